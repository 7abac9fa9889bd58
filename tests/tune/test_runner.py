"""The exclusive runner: a host batch is measured to completion before the tuner goes on."""

from __future__ import annotations

from contextlib import closing

import pytest
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms

from hwface.rpc.embedded import device_for
from hwface.targets import load_target
from hwface.tune.tuner import make_builder, make_runner


def _vector_add(n: int) -> tvm.IRModule:
    a = te.placeholder((n,), name="a")
    b = te.placeholder((n,), name="b")
    c = te.compute((n,), lambda i: a[i] + b[i], name="c")
    return tvm.IRModule({"main": te.create_prim_func([a, b, c])})


@pytest.mark.slow  # real measurements over RPC
def test_exclusive_runner_returns_finished_measurements(tmp_path):
    spec = load_target("host")
    mods = [_vector_add(n) for n in (1 << 12, 1 << 16)]
    with closing(make_builder(spec)) as builder:
        built = builder.build([ms.builder.BuilderInput(m, spec.tvm_target()) for m in mods])
    assert all(b.error_msg is None for b in built), [b.error_msg for b in built]
    with device_for(spec, None) as ep:
        runner = make_runner(ep.tracker_host, ep.tracker_port, ep.key, 1, exclusive=True)
        futures = runner.run([ms.runner.RunnerInput(b.artifact_path, "cpu", ms.arg_info.ArgInfo.from_prim_func(m["main"]))
                              for b, m in zip(built, mods)])
        assert all(f.done() for f in futures)  # an asynchronous RPCRunner returns while they still run
        results = [f.result() for f in futures]
    assert all(r.error_msg is None and r.run_secs for r in results)
    small, large = (float(r.run_secs[0]) for r in results)
    assert large > small  # 16x the elements
