"""How long the predictor takes: training a regime's model, and answering `hwface predict --model M`.

    python benchmarks/predictor_speed.py [--target host] [--regime default] [--model seesaw_share] [--rounds 3]

Prints seconds per training (the whole `hwface predictor train`: reading rows,
choosing the mode, fitting, saving) and per network answer after start-up (the
real pipeline's kernels of the network, then the lookup and the prediction),
each the median of ``--rounds`` runs, alternating.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="host")
    p.add_argument("--regime", default="default")
    p.add_argument("--model", default="seesaw_share")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    from hwface.latency.estimate import estimate_network
    from hwface.workflows.predict import load, network_kernels, train

    spec, _, _ = load(args.target, args.regime)
    t0 = time.perf_counter()
    _, kernels = network_kernels(spec, model=args.model)
    keys_s = time.perf_counter() - t0
    train_s, answer_s = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        report = train(args.target, args.regime)
        train_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, pred, table = load(args.target, args.regime)
        est = estimate_network(kernels, table)
        answer_s.append(time.perf_counter() - t0)
    print(f"training {args.target}/{args.regime} on {report.rows} rows ({report.mode}): "
          f"median {statistics.median(train_s):.1f} s [{min(train_s):.1f}-{max(train_s):.1f}]")
    print(f"{args.model}: the pipeline's kernels {keys_s:.1f} s once (export, import, fuse), then load + answer "
          f"median {statistics.median(answer_s) * 1e3:.0f} ms [{min(answer_s) * 1e3:.0f}-{max(answer_s) * 1e3:.0f}]; "
          f"{est.measured_kernels} kernels measured, {est.predicted_kernels} predicted, "
          f"total {est.total_us / 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
