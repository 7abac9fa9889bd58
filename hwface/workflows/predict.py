"""Train, evaluate and query the latency predictor of a target and regime.

- :func:`train`: current training rows and networks -> a saved :class:`~hwface.latency.predictor.Predictor`.
- :func:`evaluate`: held-out networks only: kernel level (the model on their
  kernels' keys) and network level (measured-or-predicted kernels + overhead)
  against two baselines, MAdds-only and the sum of *measured* kernels.
- :func:`predict`: a zoo model, an arch spec or an ONNX file -> per-kernel answer and total.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwface.errors import HwfaceError


@dataclass
class TrainReport:
    """A trained predictor: where, on how many rows, how long it took (seconds), the rows left out.

    ``skipped_stale``: rows of other fingerprints; ``skipped_drifted`` and
    ``skipped_drifted_networks``: kernel rows and training networks whose
    batches the drift guard kept flagged drifted.
    """

    target: str
    regime: str
    path: str
    fingerprint: str
    rows: int
    distinct_keys: int
    networks: int
    skipped_stale: int
    skipped_drifted: int
    skipped_drifted_networks: int
    mode: str
    mode_rmspe: dict[str, float]
    seconds: float


def _no_data(spec, regime: str, digest: str) -> HwfaceError:
    from hwface.latency.fingerprint import current_fingerprint

    today = current_fingerprint(spec)
    if digest != today.digest():
        return HwfaceError(f"no {regime} training rows for {spec.name} under fingerprint {digest}")
    cmd = (f"hwface sample --target {spec.name} --regime {regime} --n 3000" if regime != "zoo"
           else f"hwface profile --target {spec.name} --model M")
    return HwfaceError(f"no current {regime} rows for {spec.name} (fingerprint {digest}: "
                       f"{today.describe()}): measure them with `{cmd}`")


def train(target: str = "host", regime: str = "default", mode: str | None = None,
          out: str | Path | None = None, fingerprint: str | None = None) -> TrainReport:
    """Train and save the predictor of ``target``/``regime`` on current training rows (held-out rows never).

    ``fingerprint`` picks another device's data (see :func:`hwface.latency.lookup.resolve_fingerprint`).

    Raises
    ------
    HwfaceError
        No current rows (names the fingerprint and the command that measures it).
    """
    from hwface.latency.lookup import resolve_fingerprint
    from hwface.latency.predictor import predictor_dir, train_predictor
    from hwface.latency.reference import undisturbed
    from hwface.latency.store import LatencyStore, read_path
    from hwface.targets import load_target

    spec = load_target(target)
    today = resolve_fingerprint(spec, fingerprint)
    if not read_path(spec.name).exists():
        raise _no_data(spec, regime, today)
    t0 = time.perf_counter()
    with LatencyStore.for_reading(spec.name) as db:
        frame, stale = db.current_frame(today, regime, split="train")
        nets = db.networks_frame(fingerprint=today, regime=regime, split="train")
    frame, drifted = undisturbed(frame)
    nets, drifted_nets = undisturbed(nets)
    if frame.empty:
        raise _no_data(spec, regime, today)
    budget = _one_budget(frame) if regime == "tuned" else None
    pred = train_predictor(frame, nets, spec.name, regime, today, mode=mode, trials_per_kernel=budget)
    folder = pred.save(out or predictor_dir(spec.name, regime, today, write=True))
    return TrainReport(spec.name, regime, str(folder), today, len(frame), pred.metrics["distinct_keys"], len(nets),
                       stale, drifted, drifted_nets, pred.mode, pred.metrics["mode_rmspe_on_held_back_fifth"],
                       time.perf_counter() - t0)


def _one_budget(frame) -> int:
    budgets = sorted(set(frame["trials_per_kernel"].dropna().astype(int)))
    if len(budgets) != 1:
        raise HwfaceError(f"tuned rows of several budgets {budgets}: train one budget at a time")
    return budgets[0]


def load(target: str, regime: str, folder: str | Path | None = None, fingerprint: str | None = None):
    """``(spec, predictor, lookup)`` of ``target``/``regime``: see :func:`hwface.latency.lookup.open_lookup`."""
    from hwface.latency.lookup import open_lookup
    from hwface.targets import load_target

    spec = load_target(target)
    lookup = open_lookup(spec, regime, fingerprint, folder)
    return spec, lookup.predictor, lookup


@dataclass
class EvalReport:
    """Held-out accuracy at kernel and network level, beside the baselines (see :func:`evaluate`)."""

    target: str
    regime: str
    fingerprint: str
    kernel: dict[str, dict[str, float]]
    network: dict[str, dict[str, float]]
    interval_coverage: float
    heldout_networks: int
    points: list[dict[str, Any]] = field(default_factory=list)


def evaluate(target: str = "host", regime: str = "default", folder: str | Path | None = None,
             fingerprint: str | None = None) -> EvalReport:
    """Evaluate the saved predictor on the held-out networks (never trained on).

    All latencies are scaled to the predictor's reference state
    (:mod:`hwface.latency.reference`). Kernel level: every distinct key of the
    held-out networks' kernel rows, predicted by the model (not looked up). Network level: each held-out
    network's end-to-end median against (a) hwface's answer (kernels measured
    in the training rows where there, else predicted, plus overhead), (b) the
    MAdds-only fit on the training networks, (c) the sum of the network's own
    measured kernels plus overhead (the additivity ceiling).
    """
    from hwface.latency.estimate import estimate_network, madds_baseline
    from hwface.latency.key import LayerKey
    from hwface.latency.metrics import accuracy, coverage
    from hwface.latency.overhead import network_weight_mb
    from hwface.latency.reference import normalized_networks, normalized_rows, undisturbed
    from hwface.latency.store import LatencyStore

    spec, pred, table = load(target, regime, folder, fingerprint)
    today, state = pred.fingerprint, pred.reference
    with LatencyStore.for_reading(spec.name) as db:
        held_rows = normalized_rows(db.current_frame(today, regime, split="heldout")[0], state)
        held = normalized_networks(db.networks_frame(fingerprint=today, regime=regime, split="heldout"), state)
        train_nets = db.networks_frame(fingerprint=today, regime=regime, split="train")
    train_nets = normalized_networks(undisturbed(train_nets)[0], state)  # as the overhead was fitted
    if held.empty:
        raise HwfaceError(f"no held-out {regime} networks measured for {spec.name} under fingerprint {today}: "
                          f"run `hwface predictor heldout --target {spec.name} --regime {regime} --n 100`")
    own = held_rows.groupby("key")["median_us"].median()
    keys = [LayerKey.from_str(k) for k in own.index]
    kpred, _, _ = pred.predict_us(keys)
    kernel = {"predictor": accuracy(kpred, own.to_numpy())}
    est = [estimate_network(net_kernels, table) for net_kernels in held["kernels"]]
    measured = held["median_us"].to_numpy()
    ours = np.array([e.total_us for e in est])
    own_sums = np.array([sum(own.get(k, np.nan) * n for k, n in ks) for ks in held["kernels"]])
    ceiling = own_sums + np.array([pred.overhead.of(c, k, network_weight_mb(ks))
                                   for c, k, ks in zip(held["kernel_calls"], own_sums, held["kernels"])])
    madds = madds_baseline(train_nets["madds"], train_nets["median_us"]) if len(train_nets) >= 2 else None
    network = {"predictor": accuracy(ours, measured), "sum_of_measured_kernels": accuracy(ceiling, measured)}
    if madds is not None:
        network["madds_only"] = accuracy(madds(held["madds"]), measured)
    cov = coverage([e.low_us for e in est], [e.high_us for e in est], measured)
    points = [{"name": n, "measured_us": float(m), "predicted_us": float(e.total_us), "low_us": e.low_us,
               "high_us": e.high_us, "measured_kernels": e.measured_kernels, "predicted_kernels": e.predicted_kernels}
              for n, m, e in zip(held["name"], measured, est)]
    return EvalReport(spec.name, regime, today, kernel, network, cov, len(held), points)


def plot_eval(report: EvalReport, path: str | Path) -> Path:
    """Predicted vs measured end-to-end latency of the held-out networks (log-log) with the ±10% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.array([p["measured_us"] for p in report.points]) / 1e3
    p = np.array([p["predicted_us"] for p in report.points]) / 1e3
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo, hi = min(m.min(), p.min()) * 0.8, max(m.max(), p.max()) * 1.25
    grid = np.geomspace(lo, hi, 50)
    ax.fill_between(grid, grid * 0.9, grid * 1.1, color="tab:green", alpha=0.2, label="±10%")
    ax.plot(grid, grid, color="tab:green", lw=1)
    ax.scatter(m, p, s=14, color="tab:blue", label=f"held-out networks ({len(m)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured end to end (ms)")
    ax.set_ylabel("predicted (ms)")
    w10 = report.network["predictor"]["within_10"]
    ax.set_title(f"{report.target} / {report.regime}: {w10:.0%} within ±10%")
    ax.legend(loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def network_kernels(spec, model: str | None = None, arch: str | Path | None = None,
                    onnx: str | Path | None = None) -> tuple[str, list[tuple[str, int]]]:
    """The distinct kernels ``(key string, calls)`` a network runs on ``spec``, through the real pipeline.

    ``arch`` is a spec JSON file here (see :func:`hwface.nas.pipeline_kernels.pipeline_kernels`).
    """
    from hwface.nas.pipeline_kernels import pipeline_kernels

    if arch is not None:
        return Path(arch).stem, pipeline_kernels(spec, arch=_read_arch(arch))[1]
    return pipeline_kernels(spec, model=model, onnx=onnx)


def _read_arch(path: str | Path):
    """The arch spec in a JSON file (one-line errors for an unreadable file or a bad spec)."""
    from hwface.nas import ArchSpec

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise HwfaceError(f"cannot read arch spec {path}: {exc.strerror}") from None
    return ArchSpec.from_json(text)


def predict(target: str = "host", regime: str = "default", model: str | None = None,
            arch: str | Path | None = None, onnx: str | Path | None = None, fingerprint: str | None = None):
    """Estimate a network's latency on ``target``: ``(name, NetworkEstimate, predictor)``.

    Answered by :class:`hwface.nas.lookup.LatencyModel`: a spec (and a zoo network that
    fits the grammar) is planned without TVM; an ONNX file or another zoo network goes
    through the real pipeline. ``fingerprint`` answers for another device's data (see
    :func:`hwface.latency.lookup.resolve_fingerprint`). The network is checked first (an
    unknown model or a bad spec is named before anything else is read).
    """
    from hwface.nas.lookup import LatencyModel

    if model is not None:
        from hwface.models import get_model_info

        get_model_info(model)
    network = _read_arch(arch) if arch is not None else (Path(onnx) if onnx is not None else model)
    lm = LatencyModel.load(target, regime, fingerprint)
    name, kernels = lm.kernels_of(network)
    from hwface.latency.estimate import estimate_network

    return (Path(arch).stem if arch is not None else name), estimate_network(kernels, lm.lookup), lm.lookup.predictor
