"""A MetaSchedule JSON database that several processes may append to at once.

MetaSchedule's JSONDatabase reads both files when it opens and then appends: a
tuning record line names its workload by its index in the workload file. Two
tunes that opened the same logs and each append a new workload would both give
it the same index, and every later record of one of them would point at the
other's kernel. :class:`SharedJSONDatabase` appends under an exclusive lock on
the folder's lock file and, when another process appended since it last looked,
re-reads the files first, so each index it writes is the one in the file.

A record's trace names the kernel's blocks, and MetaSchedule files a record
under the first workload that is *structurally* equal to the kernel it was
traced on, which may name its blocks otherwise (a reduction's block takes the
name of its Relax variable, ``lv7_red`` in one network, ``lv11_red`` in
another). On load, each record is replayed on its workload, and one that does
not replay makes the whole database unreadable. Tunes therefore trace on the
stored copy (:func:`hwface.tune.logs.stored_twin`), and a record that still does
not replay (another process filed the kernel first meanwhile) is not written.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.database import PyDatabase

from hwface.tune.logs import RECORD_FILE, WORKLOAD_FILE, folder_lock, repair

@derived_object
class SharedJSONDatabase(PyDatabase):
    """JSONDatabase in ``folder`` whose appends are safe against other processes appending too.

    Reads answer from what was read last (at open, or before this process's
    last append); appends (new workloads, tuning records) take the folder lock
    and re-read first when the files grew meanwhile.
    """

    def __init__(self, folder: str | Path, module_equality: str = "structural") -> None:
        super().__init__()
        self.folder = Path(folder)
        self.module_equality = module_equality
        self.not_replaying = 0  # records not written: traced on a differently named copy of their kernel
        with folder_lock(self.folder):
            self._read()

    def _sizes(self) -> tuple[int, int]:
        return tuple((self.folder / f).stat().st_size if (self.folder / f).exists() else 0
                     for f in (WORKLOAD_FILE, RECORD_FILE))

    def _read(self) -> None:
        from tvm.s_tir import meta_schedule as ms

        self.db = ms.database.JSONDatabase(
            path_workload=str(self.folder / WORKLOAD_FILE), path_tuning_record=str(self.folder / RECORD_FILE),
            allow_missing=True, module_equality=self.module_equality,
        )
        self.seen = self._sizes()

    @contextmanager
    def _appending(self) -> Iterator[None]:
        with folder_lock(self.folder):
            if self._sizes() != self.seen:  # another process appended: take its workloads' indices
                repair(self.folder / WORKLOAD_FILE) + repair(self.folder / RECORD_FILE)  # a torn line of a killed one
                self._read()
            yield
            self.seen = self._sizes()

    def has_workload(self, mod):
        return self.db.has_workload(mod)

    def commit_workload(self, mod):
        if self.db.has_workload(mod):
            return self.db.commit_workload(mod)  # known: returns it, writes nothing
        with self._appending():
            return self.db.commit_workload(mod)

    def commit_tuning_record(self, record) -> None:
        with self._appending():
            stored = self.db.commit_workload(record.workload.mod)
            if not _replays(record.trace, stored.mod):
                self.not_replaying += 1
                return
            self.db.commit_tuning_record(record)

    def get_top_k(self, workload, top_k: int):
        if not self.db.has_workload(workload.mod):
            return []
        return self.db.get_top_k(self.db.commit_workload(workload.mod), top_k)

    def get_all_tuning_records(self):
        return self.db.get_all_tuning_records()

    def query_tuning_record(self, mod, target, workload_name):
        return self.db.query_tuning_record(mod, target, workload_name)

    def query_schedule(self, mod, target, workload_name):
        return self.db.query_schedule(mod, target, workload_name)

    def query_ir_module(self, mod, target, workload_name):
        return self.db.query_ir_module(mod, target, workload_name)

    def __len__(self) -> int:
        return len(self.db)


def _replays(trace, mod) -> bool:
    """True when ``trace`` applies to ``mod`` (as loading the record will apply it)."""
    import tvm

    try:
        trace.apply_to_schedule(tvm.s_tir.Schedule(mod), remove_postproc=False)
    except Exception:  # TVM raises its own error types for a block or loop the module lacks
        return False
    return True
