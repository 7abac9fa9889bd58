"""The pooled builder: candidates built in worker processes, a build past the timeout is a failed candidate."""

from __future__ import annotations

from contextlib import closing
from functools import partial

import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms

from hwface.targets import load_target
from hwface.tune.builder import PooledBuilder
from hwface.tune.tuner import export_candidate, make_builder


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
