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


def test_opencl_candidates_build_with_gpu_rules_without_a_device(tiny_a, tmp_path):
    """android-mali: task extraction, a design space from MetaSchedule's GPU rules, one candidate built and linked."""
    from hwface.compile.elf import elf_machine
    from hwface.compile.network import fused_module, load_network
    from hwface.tune import logs
    from hwface.tune.tuner import tune_contexts

    spec = load_target("android-mali")
    tasks = logs.kernel_tasks(fused_module(load_network(None, tiny_a, None, None), spec), spec)
    assert tasks and all(t.target.kind.name == "opencl" for t in tasks)
    conv = next(t for t in tasks if "conv2d" in t.task_name)
    (ctx,), _ = tune_contexts([conv], 1, spec, 0, str(tmp_path))  # as hwface tune makes them
    sch = ctx.generate_design_space()[0]
    assert "threadIdx.x" in sch.mod.script()  # bound to GPU threads: the GPU rules ran
    with closing(make_builder(spec)) as builder:
        (built,) = builder.build([ms.builder.BuilderInput(sch.mod, spec.tvm_target())])
    assert built.error_msg is None, built.error_msg
    assert elf_machine(built.artifact_path) == "aarch64"
    assert b"__kernel void" in open(built.artifact_path, "rb").read()
