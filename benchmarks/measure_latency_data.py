"""The committed commands that produce the shipped latency data of a target (resumable; run in the background).

    python benchmarks/measure_latency_data.py prune              # archive stale rows (hwface db prune --stale)
    python benchmarks/measure_latency_data.py default-sample --n 3000
    python benchmarks/measure_latency_data.py zoo-default        # every zoo network, TVM's default schedules
    python benchmarks/measure_latency_data.py heldout-default --n 100
    python benchmarks/measure_latency_data.py tuned-sample --n 1000    # K = TUNED_BUDGET trials a kernel
    python benchmarks/measure_latency_data.py zoo-tuned          # every zoo network tuned at K, then beside onnxruntime
    python benchmarks/measure_latency_data.py variants           # the claims' zoo variants (one change each) at K
    python benchmarks/measure_latency_data.py zoo-rounds         # the tuned zoo on both engines, in rounds (one run)
    python benchmarks/measure_latency_data.py redo --models M    # archive tuned zoo networks / variants, measure again
    python benchmarks/measure_latency_data.py heldout-tuned --n 30
    python benchmarks/measure_latency_data.py train-tuned --n 10       # random specs tuned at K, split = train
    python benchmarks/measure_latency_data.py trim-budget        # records beyond K + 1 a kernel (two tunes at once)
    python benchmarks/measure_latency_data.py default-sample zoo-default heldout-default --n 3000 --n-heldout 100

Several steps run one after the other in one process (every module they use is
imported before the first starts, so editing the tree meanwhile cannot change
what they run).

They write the shipped set itself: ``$HWFACE_LATENCY_DB`` and ``$HWFACE_TUNING_LOGS``
default to the checkout's ``latency_db/`` and ``tuning_logs/`` (a user's hwface
writes to the user's data folder instead, see hwface.data_dirs).

Each step skips what today's pipeline fingerprint already measured, so a rerun
resumes; progress is printed one line at a time with a timestamp. docs/latency.md
records how far each step has got and how long it took.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HWFACE_LATENCY_DB", str(REPO / "latency_db"))  # the shipped set, before hwface reads them
os.environ.setdefault("HWFACE_TUNING_LOGS", str(REPO / "tuning_logs"))

from hwface.latency.store import TUNED_BUDGET  # noqa: E402  K, the tuned regime's trials a kernel

START = time.time()


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.time() - START:7.0f}s] {msg}", flush=True)


def prune(args) -> None:
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import LatencyStore, db_path
    from hwface.targets import load_target

    fp = current_fingerprint(load_target(args.target))
    with LatencyStore(db_path(args.target)) as db:
        say(f"moved to the archive: {db.prune_stale(fp)} (today: {fp.digest()}, {fp.describe()})")


def _sample(args, regime: str, **options) -> None:
    """The sampler over every kind, progress at most every 20 s (and at every re-measurement)."""
    from hwface.latency.sampler import KINDS, sample

    last = [0.0]

    def progress(done: int, total: int, msg: str) -> None:
        if time.time() - last[0] > 20 or "again" in msg:
            last[0] = time.time()
            say(f"{done}/{total} configurations: {msg}")

    r = sample(target=args.target, kinds=KINDS, n=args.n, regime=regime, seed=0, batch=16, progress=progress,
               **options)
    say(f"done: {r.__dict__}")


def default_sample(args) -> None:
    _sample(args, "default")


def tuned_sample(args) -> None:
    _sample(args, "tuned", trials_per_kernel=TUNED_BUDGET)


def zoo_default(args) -> None:
    from hwface.workflows.zoo_data import measure_zoo

    r = measure_zoo(args.target, "default", progress=say)
    say(f"done: {r.__dict__}")


def zoo_tuned(args) -> None:
    """The claims' networks first (pairs complete early), then the rest of the zoo from the fewest MAdds.

    Each network is tuned, measured, then timed beside onnxruntime before the next one.
    """
    from hwface.claims.catalog import CLAIM_NETWORKS
    from hwface.measure.drift import DriftGuard
    from hwface.targets import load_target
    from hwface.workflows.zoo_data import compare_zoo_engines, measure_zoo, zoo_by_madds

    models = args.models or [*CLAIM_NETWORKS, *(m for m in zoo_by_madds() if m not in CLAIM_NETWORKS)]
    guard = DriftGuard(load_target(args.target))
    for m in models:
        r = measure_zoo(args.target, "tuned", models=[m], progress=say, guard=guard)
        if r.failed:
            say(f"failed: {r.failed}")
            continue
        try:
            e = compare_zoo_engines(args.target, models=[m], progress=say)
        except Exception as exc:  # one network's comparison failing must not stop the measurement
            say(f"{m}: the comparison with onnxruntime failed: {type(exc).__name__}: {exc}")
            continue
        if r.measured or e["compared"]:
            say(f"{m}: measured {r.measured}, beside onnxruntime {e['compared']}; "
                f"drift guard {guard.redone} batches redone, {guard.drifted} kept drifted")


def variants(args) -> None:
    """The claims' zoo variants (one thing changed, hwface.nas.variants), tuned at K and measured."""
    from hwface.claims.catalog import VARIANT_NETWORKS
    from hwface.workflows.variants import measure_variants

    r = measure_variants(list(args.models or VARIANT_NETWORKS), args.target, progress=say)
    say(f"variants: {r.measured} measured, {r.already_done} already done, failed: {r.failed or 'none'}")


def redo(args) -> None:
    """Archive the tuned rows of --models (zoo networks or variants) under today's fingerprint, then measure them again.

    For a network whose measurement was disturbed (``hwface db check`` names them;
    ``hwface db prune --network``); its tuning records stay, so it is only profiled
    again. Its comparison with onnxruntime stays too (the two engines are timed
    alternately, so a disturbance hits both).
    """
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.store import LatencyStore
    from hwface.targets import load_target

    if not args.models:
        raise SystemExit("redo needs --models NAME ...")
    spec = load_target(args.target)
    today = current_fingerprint(spec).digest()
    with LatencyStore.for_writing(spec.name) as db:
        for m in args.models:
            say(f"{m}: archived {db.archive_network(m, 'tuned', today)}")
    for step, nets in ((zoo_tuned, [m for m in args.models if "@" not in m]),
                       (variants, [m for m in args.models if "@" in m])):  # a variant's name has an "@"
        if nets:
            step(argparse.Namespace(**{**vars(args), "models": nets}))


def zoo_rounds(args) -> None:
    """Every tuned zoo network (or --models) on both engines in rounds, one run; the claims' end-to-end figures."""
    from hwface.workflows.zoo_rounds import time_zoo_in_rounds

    run = time_zoo_in_rounds(args.target, models=args.models, progress=say)
    say(f"run {run.run_id}: {len(run.networks)} networks x 2 engines, {run.rounds} rounds, {run.stored} rows stored")


def trim_budget(args) -> None:
    """Drop the records beyond K + 1 a kernel that two budget tunes running at once left (session 10)."""
    from hwface.targets import load_target
    from hwface.tune import logs

    folder = logs.budget_dir(load_target(args.target), TUNED_BUDGET)
    say(f"{folder}: dropped {logs.trim_to_budget(folder, TUNED_BUDGET + 1)} records beyond {TUNED_BUDGET + 1} a kernel")


def heldout_tuned(args) -> None:
    from hwface.workflows.heldout import measure_heldout

    r = measure_heldout(args.target, "tuned", n=args.n_heldout or args.n, progress=say)
    say(f"done: {r.__dict__}")


def train_tuned(args) -> None:
    """Random arch specs tuned at K as the tuned regime's training networks (kernel rows and the overhead fit)."""
    from hwface.workflows.heldout import measure_random_networks

    r = measure_random_networks(args.target, "tuned", n=args.n_train or args.n, split="train", progress=say)
    say(f"done: {r.__dict__}")


def heldout_default(args) -> None:
    from hwface.workflows.heldout import measure_heldout

    r = measure_heldout(args.target, "default", n=args.n_heldout or args.n, progress=say)
    say(f"done: {r.__dict__}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("steps", nargs="+", choices=tuple(STEPS))
    p.add_argument("--target", default="host")
    p.add_argument("--n", type=int, default=0, help="configurations to sample (default-sample) or held-out networks")
    p.add_argument("--n-heldout", type=int, default=0, help="held-out networks when several steps run (else --n)")
    p.add_argument("--n-train", type=int, default=0, help="training networks (train-tuned) when several steps run")
    p.add_argument("--models", nargs="+", help="zoo-tuned, variants, zoo-rounds: these networks only (default: all; zoo-tuned: the claims' "
                        "first, then the fewest MAdds first); redo: the networks to measure again")
    args = p.parse_args(argv)
    import hwface.latency.fingerprint, hwface.latency.sampler, hwface.latency.store  # noqa: E401,F401
    import hwface.claims.catalog, hwface.measure.drift, hwface.measure.engines  # noqa: E401,F401
    import hwface.workflows.heldout  # noqa: F401
    import hwface.workflows.tuned, hwface.workflows.zoo_data, hwface.workflows.zoo_rounds  # noqa: E401,F401
    import hwface.workflows.variants  # noqa: F401
    for step in args.steps:
        say(f"step {step}")
        STEPS[step](args)
    return 0


STEPS = {"prune": prune, "default-sample": default_sample, "zoo-default": zoo_default,
         "heldout-default": heldout_default, "tuned-sample": tuned_sample, "zoo-tuned": zoo_tuned,
         "heldout-tuned": heldout_tuned, "trim-budget": trim_budget, "zoo-rounds": zoo_rounds,
         "variants": variants, "train-tuned": train_tuned, "redo": redo}


if __name__ == "__main__":
    sys.exit(main())
