"""What one kernel call costs the Relax VM on the host, apart from the kernel's work.

Builds Relax functions that chain ``--calls`` calls of a trivial kernel (64 floats, +1)
and one that makes a single call, serial and with the loop split over the thread pool,
and prints the cost per extra call: the VM's dispatch with its output allocation, and
the thread pool's launch on top of it. Compare with docs/performance.md's gap between
the sum of seesaw_share's kernels and its end-to-end latency.

    .venv/bin/python benchmarks/vm_call_overhead.py [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

N = 64  # floats per call: the kernel's own work is negligible


def trivial_kernel(parallel: bool):
    """``B = A + 1`` over :data:`N` floats, its loop split over two threads when ``parallel``."""
    import tvm
    from tvm import te

    a = te.placeholder((N,), name="A")
    b = te.compute((N,), lambda i: a[i] + 1.0, name="B")
    sch = tvm.s_tir.Schedule(te.create_prim_func([a, b]))
    if parallel:
        (loop,) = sch.get_loops(sch.get_sblock("B"))
        outer, _ = sch.split(loop, [2, None])
        sch.parallel(outer)
    return sch.mod["main"].without_attr("global_symbol")


def chain(parallel: bool, calls: int):
    """A VM executable whose ``main`` calls the trivial kernel ``calls`` times in a row."""
    import tvm
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((N,), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            kernel = bb.add_func(trivial_kernel(parallel), "inc")
            y = x
            for _ in range(calls):
                y = bb.emit(relax.call_tir(kernel, [y], relax.TensorType((N,), "float32")))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return tvm.compile(bb.get(), target=tvm.target.Target({"kind": "llvm"}))


def best_us(vm, x, rounds: int, calls_per_round: int = 2000) -> float:
    """Fastest of ``rounds`` means of ``main``, microseconds."""
    for _ in range(100):
        vm["main"](x)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls_per_round):
            vm["main"](x)
        best = min(best, (time.perf_counter() - t) / calls_per_round * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    import numpy as np

    from hwface.measure.threads import runtime_threads, use_all_cores

    use_all_cores()  # before TVM's thread pool starts
    import tvm
    from tvm import relax

    threads = runtime_threads()

    x = tvm.runtime.tensor(np.zeros(N, np.float32))
    print(f"{threads} runtime threads; per extra kernel call (best of {args.rounds} rounds):")
    per_call = {}
    for parallel in (False, True):
        one, many = (best_us(relax.VirtualMachine(chain(parallel, c), tvm.cpu()), x, args.rounds)
                     for c in (1, args.calls))
        per_call[parallel] = (many - one) / (args.calls - 1)
        print(f"  {'parallel' if parallel else 'serial':<9} kernel: {per_call[parallel]:.3f} us "
              f"(main with 1 call {one:.2f} us, with {args.calls} calls {many:.2f} us)")
    print(f"  thread-pool launch: {per_call[True] - per_call[False]:.3f} us per parallel kernel")


if __name__ == "__main__":
    main()
