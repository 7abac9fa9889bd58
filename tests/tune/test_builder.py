"""The pooled builder: candidates built in worker processes, a build past the timeout is a failed candidate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import closing
from functools import partial
from pathlib import Path

import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms

from hwface.targets import load_target
from hwface.tune.builder import PooledBuilder
from hwface.tune.tuner import export_candidate, make_builder
from tests.conftest import REPO


def _mods(n: int) -> list[tvm.IRModule]:
    out = []
    for i in range(n):
        a = te.placeholder((256 + i,), name="a")
        b = te.compute(a.shape, lambda j: a[j] * 2.0, name="b")
        out.append(tvm.IRModule({"main": te.create_prim_func([a, b])}))
    return out


def test_candidates_build_in_workers_and_link_to_shared_objects():
    spec = load_target("host")
    with closing(make_builder(spec)) as builder:
        built = builder.build([ms.builder.BuilderInput(m, spec.tvm_target()) for m in _mods(3)])
    assert [b.error_msg for b in built] == [None] * 3
    assert all(b.artifact_path.endswith(".so") and tvm.runtime.load_module(b.artifact_path) for b in built)


def test_a_build_past_the_timeout_is_a_failed_candidate_not_a_hang():
    spec = load_target("host")
    with closing(PooledBuilder(partial(export_candidate, spec=spec), workers=1, timeout_s=0.01)) as builder:
        (res,) = builder.build([ms.builder.BuilderInput(_mods(1)[0], spec.tvm_target())])
    assert res.artifact_path is None and "timed out" in res.error_msg


def test_a_default_schedule_that_does_not_build_says_why(capfd):
    from hwface.tune.tuner import measure_default

    spec = load_target("host")
    with closing(PooledBuilder(partial(export_candidate, spec=spec), workers=1, timeout_s=0.01)) as builder:
        out = measure_default(_mods(1), spec, builder, ms.runner.LocalRunner())
    assert out == [None]
    err = capfd.readouterr().err
    assert "hwface: warning: the default schedule of kernel 0 did not build" in err and "timed out" in err


def test_opencl_candidates_build_with_gpu_rules_without_a_device(tiny_a, tmp_path):
    """android-mali: task extraction, a design space from MetaSchedule's GPU rules, one candidate built and linked."""
    from hwface.compile.elf import elf_machine
    from hwface.compile.network import fused_module, load_network
    from hwface.tune import logs
    from hwface.tune.tuner import meta_schedule_logging, tune_contexts

    spec = load_target("android-mali")
    tasks = logs.kernel_tasks(fused_module(load_network(None, tiny_a, None, None), spec), spec)
    assert tasks and all(t.target.kind.name == "opencl" for t in tasks)
    conv = next(t for t in tasks if "conv2d" in t.task_name)
    with meta_schedule_logging():  # as hwface tune makes them
        (ctx,), _ = tune_contexts([conv], 1, spec, 0, str(tmp_path))
        sch = ctx.generate_design_space()[0]
    assert "threadIdx.x" in sch.mod.script()  # bound to GPU threads: the GPU rules ran
    with closing(make_builder(spec)) as builder:
        (built,) = builder.build([ms.builder.BuilderInput(sch.mod, spec.tvm_target())])
    assert built.error_msg is None, built.error_msg
    assert elf_machine(built.artifact_path) == "aarch64"
    assert b"__kernel void" in open(built.artifact_path, "rb").read()


SLOW_BUILD = """
import sys
from contextlib import closing
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from hwface.targets import load_target
from hwface.tune.tuner import make_builder

a = te.placeholder((8000,), name="a")  # 8,000 unrolled exp/sin/log: LLVM takes about 10 s
b = te.compute(a.shape, lambda i: te.exp(a[i]) * te.sin(a[i]) + te.log(a[i] + 1.0), name="b")
sch = tvm.s_tir.Schedule(te.create_prim_func([a, b]))
sch.unroll(sch.get_loops(sch.get_sblock("b"))[0])
spec = load_target("host")
with closing(make_builder(spec)) as builder:
    print("building", flush=True)
    builder.build([ms.builder.BuilderInput(sch.mod, spec.tvm_target())])
"""


def _workers(pgid: int) -> dict[int, str]:
    """Live builder workers of a process group: pid -> state."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z" and b"popen_worker" in cmd:
            found[int(stat.parent.name)] = fields[0]
    return found


def test_a_killed_tuner_takes_its_builder_workers_along():
    """SIGKILL to the process alone (not its group) mid-build: the worker dies at once, not after its build."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_BUILD], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "building"
        deadline = time.monotonic() + 60
        while "R" not in _workers(proc.pid).values() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(4)  # past the worker's start-up, inside the build
        building = _workers(proc.pid)
        assert building, "the build ended before the kill: make it slower"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    gone_by = time.monotonic() + 2
    while _workers(proc.pid) and time.monotonic() < gone_by:
        time.sleep(0.05)
    left = _workers(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"workers {building} outlived the kill"
