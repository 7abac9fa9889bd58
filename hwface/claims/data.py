"""The figures the claims rest on, read from the latency database: the tuned zoo, both engines, the predictor.

For one target, fingerprint (device and pipeline) and budget ``K``:

- per zoo network (and zoo variant, :mod:`hwface.nas.variants`) measured in the
  tuned regime at ``K`` (``benchmarks/measure_latency_data.py zoo-tuned`` and
  ``variants``): end-to-end latency and each kernel's,
  scaled to one reference state of the device (:mod:`hwface.latency.reference`),
  so networks measured an hour apart on a drifting box compare fairly;
- onnxruntime beside TVM, timed alternately in one run (``engine_comparisons``). The
  box drifts by up to 2x between runs, so a network's onnxruntime latency is its
  (drift-scaled) TVM latency divided by that run's per-round TVM / onnxruntime
  ratio, never the raw onnxruntime time of a run an hour away from another's;
- the latest run timing the tuned zoo in rounds (``measure_latency_data.py
  zoo-rounds``), where there is one: every network on both engines once a round,
  so ratios between networks are not ratios between states of the box
  (:func:`load_rounds`);
- MAdds and parameters as the papers count them (:mod:`hwface.analysis`);
- the tuned regime's predictor, when one is trained for the fingerprint: every
  network and kernel predicted (the zoo's tuned rows are held out, never trained on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwface.errors import HwfaceError

MAX_GAP = 0.25  # |1 - (kernel sum + overhead) / end to end| above this: the end-to-end run was disturbed


@dataclass(frozen=True)
class KernelFigure:
    """One distinct kernel of a network: its key, calls per inference, latency of one call (us)."""

    key: Any  # LayerKey
    calls: int
    measured_us: float | None
    predicted_us: float | None = None


@dataclass
class NetworkFigures:
    """One zoo network's figures (latencies in microseconds, MAdds and parameters as counted by hwface)."""

    name: str
    madds: int
    params: int
    paper_madds: float | None
    tvm_us: float | None = None
    kernel_sum_us: float | None = None
    ort_us: float | None = None  # tvm_us / engine_ratio: onnxruntime in the same reference state as tvm_us
    ort_raw_us: float | None = None  # the comparison run's own onnxruntime median
    tvm_beside_ort_us: float | None = None
    engine_ratio: float | None = None  # TVM / onnxruntime, median of alternating rounds
    predicted_us: float | None = None
    predicted_low_us: float | None = None
    predicted_high_us: float | None = None
    tuning_db_hash: str | None = None
    kernels: list[KernelFigure] = field(default_factory=list)
    overhead_us: float | None = None  # the predictor's overhead for its calls and kernel sum (None: no predictor)
    state: float = 1.0  # the state its end-to-end and kernel sum are in, over the reference state (a rounds run's)

    @property
    def additive(self) -> bool | None:
        """Its kernels' sum plus the predictor's overhead within :data:`MAX_GAP` of its end-to-end time.

        None when not measured. Where they disagree more, the end-to-end run was
        disturbed (the drift guard kept it after its attempts) and a ratio resting
        on it says nothing. The overhead (VM dispatch, colder caches than in a
        kernel's own timing loop, weights fetched: :class:`hwface.latency.overhead.Overhead`) is the
        tuned predictor's, fitted on its training networks: a tuned network's
        kernels sum to 0.7-0.8 of its end-to-end time on the session-13 rocketlake
        box with nothing disturbed. Without a predictor (or one fitted on no
        network), the kernels' sum alone.
        """
        if self.tvm_us is None or not self.kernel_sum_us:
            return None
        return abs(1 - (self.kernel_sum_us + (self.overhead_us or 0.0)) / self.tvm_us) <= MAX_GAP


@dataclass
class ClaimsData:
    """Everything the claims read, for one target, fingerprint, regime and budget."""

    target: str
    device: str
    fingerprint: str
    regime: str
    budget: int
    networks: dict[str, NetworkFigures]
    predictor: str | None  # what predicted, or None
    predictor_note: str = ""
    rounds_run: str | None = None  # the rounds run end-to-end figures come from (id, time, networks), or None
    rounds_state: float | None = None  # that run's TVM times over the profiles' (the kernel sums' scale into it)
    overhead: Any = None  # the predictor's Overhead fit, if there is a predictor

    def measured(self, name: str) -> float | None:
        n = self.networks.get(name)
        return n.tvm_us if n else None


def zoo_figures() -> dict[str, NetworkFigures]:
    """MAdds, parameters and the paper's MAdds of every zoo network (no latency yet)."""
    from hwface.analysis import summarize
    from hwface.models import list_models

    out = {}
    for m in list_models():
        s = summarize(m)
        out[m] = NetworkFigures(m, s.madds, s.params, s.paper_madds)
    return out


def variant_figures(names) -> dict[str, NetworkFigures]:
    """MAdds and parameters of zoo variants (:mod:`hwface.nas.variants`), counted on their arch specs."""
    from hwface.nas import spec_madds
    from hwface.nas.build import build_untrained
    from hwface.nas.variants import variant_spec

    out = {}
    for name in names:
        arch = variant_spec(name)
        params = sum(p.numel() for p in build_untrained(arch).parameters())
        out[name] = NetworkFigures(name, spec_madds(arch), params, None)
    return out


def _kernels(row, rows) -> list[KernelFigure]:
    """A stored network's distinct kernels with their measured latency (its own rows', normalized)."""
    from hwface.latency.key import LayerKey

    own = rows[rows["source"] == row["name"]].groupby("key")["median_us"].median()
    return [KernelFigure(LayerKey.from_str(k), int(n), float(own[k]) if k in own.index else None)
            for k, n in row["kernels"]]


def load_measured(data: ClaimsData, db) -> None:
    """Fill ``data.networks`` with the tuned zoo's measurements and the engine comparisons of ``db``."""
    from hwface.latency.reference import canonical_state, normalized_networks, normalized_rows

    nets = db.networks_frame(fingerprint=data.fingerprint, regime=data.regime)
    nets = nets[nets["origin"].isin(("zoo", "variant")) & (nets["trials_per_kernel"] == data.budget)]
    rows = db.frame(regime=data.regime, where={"fingerprint": data.fingerprint})
    rows = rows[rows["source"].isin(set(nets["name"])) & (rows["trials_per_kernel"] == data.budget)]
    state = canonical_state(rows)
    nets, rows = normalized_networks(nets, state), normalized_rows(rows, state)
    for _, row in nets.drop_duplicates("name", keep="last").iterrows():
        n = data.networks.get(row["name"])
        if n is not None:
            n.tvm_us, n.kernel_sum_us = float(row["median_us"]), float(row["kernel_sum_us"])
            n.tuning_db_hash, n.kernels = row["tuning_db_hash"], _kernels(row, rows)
    engines = db.engine_comparisons_frame(fingerprint=data.fingerprint, regime=data.regime)
    for _, e in engines[engines["trials_per_kernel"] == data.budget].iterrows():
        n = data.networks.get(e["network"])
        if n is not None:
            n.ort_raw_us, n.tvm_beside_ort_us, n.engine_ratio = e["ort_median_us"], e["tvm_median_us"], e["ratio"]
            n.ort_us = n.tvm_us / n.engine_ratio if n.tvm_us is not None and n.engine_ratio else None


def load_rounds(data: ClaimsData, db) -> None:
    """Take the end-to-end figures of the latest run timing the tuned zoo in rounds, where there is one.

    Every network of the run has its TVM and onnxruntime latency from the run
    (median of its rounds) and its engine ratio per round. Its kernel sum, scaled
    to the reference state, is brought into the run's state by the median over the
    run's networks of their run TVM time over their profile's (drift-scaled) one.
    """
    import numpy as np

    frame = db.round_timings_frame(fingerprint=data.fingerprint, regime=data.regime)
    frame = frame[frame["trials_per_kernel"] == data.budget]
    if frame.empty:
        return
    run = frame[frame["run_id"] == frame.sort_values("measured_at")["run_id"].iloc[-1]]
    timed = {(r["network"], r["engine"]): np.asarray(r["rounds_us"]) for _, r in run.iterrows()}
    nets = [data.networks[m] for m in run["network"].unique() if m in data.networks and (m, "tvm") in timed]
    state = [float(np.median(timed[(n.name, "tvm")])) / n.tvm_us for n in nets if n.tvm_us]
    data.rounds_state = float(np.median(state)) if state else 1.0
    for n in nets:
        tvm, ort = timed[(n.name, "tvm")], timed.get((n.name, "onnxruntime"))
        n.tvm_us = float(np.median(tvm))
        n.kernel_sum_us = n.kernel_sum_us * data.rounds_state if n.kernel_sum_us else n.kernel_sum_us
        n.state = data.rounds_state
        if ort is not None:
            n.ort_us, n.engine_ratio = float(np.median(ort)), float(np.median(tvm / ort))
    rounds = len(next(iter(timed.values())))
    data.rounds_run = (f"run `{run['run_id'].iloc[0]}` ({run['measured_at'].iloc[0]}: {len(nets)} networks, both "
                       f"engines, {rounds} rounds)")


def load_predicted(data: ClaimsData) -> None:
    """Predict every measured network and kernel with the regime's predictor, if one is trained."""
    from hwface.latency.estimate import estimate_network
    from hwface.latency.overhead import network_weight_mb
    from hwface.nas.lookup import LatencyModel

    try:
        lm = LatencyModel.load(data.target, data.regime, data.fingerprint)
    except HwfaceError:
        data.predictor = None
        data.predictor_note = (f"no {data.regime}-regime predictor is trained for this fingerprint (`hwface predictor "
                               f"train --target {data.target} --regime {data.regime} --fingerprint "
                               f"{data.fingerprint[:8]}`), so the predicted column is empty")
        return
    pred = lm.lookup.predictor
    data.predictor = (f"{data.target}.{data.regime}.{data.fingerprint} ({pred.rows} training rows, "
                      f"K = {pred.trials_per_kernel})")
    data.overhead = pred.overhead if pred.overhead.networks else None  # no training network: nothing fitted
    for n in data.networks.values():
        if n.tvm_us is None:
            continue
        if data.overhead is not None:  # in the network's state (a rounds run's), as its kernel sum
            calls, reference_sum = sum(k.calls for k in n.kernels), (n.kernel_sum_us or 0.0) / n.state
            weights = network_weight_mb((k.key.to_str(), k.calls) for k in n.kernels)
            n.overhead_us = data.overhead.of(calls, reference_sum, weights) * n.state
        # the kernels it ran (as `hwface predictor eval` answers a held-out network): a zoo variant has no zoo name
        est = estimate_network([(k.key.to_str(), k.calls) for k in n.kernels], lm.lookup)
        n.predicted_us, n.predicted_low_us, n.predicted_high_us = est.total_us, est.low_us, est.high_us
        n.kernels = [KernelFigure(k.key, k.calls, k.measured_us, float(v))
                     for k, v in zip(n.kernels, est.answers.latency_us)]


def load_claims_data(target: str = "host", fingerprint: str | None = None, budget: int | None = None,
                     regime: str = "tuned", predict: bool = True, variants: tuple[str, ...] = ()) -> ClaimsData:
    """The claims' figures for ``target`` (see the module docstring).

    Parameters
    ----------
    target : str
    fingerprint : str, optional
        A stored fingerprint digest or prefix (``hwface db stats``); default today's.
    budget : int, optional
        Trials per kernel of the tuned networks (default :data:`hwface.workflows.tuned.TUNED_BUDGET`).
    regime : str
        ``tuned`` (the claims' figures) or ``default``.
    predict : bool
        Also predict with the regime's predictor, if trained.
    variants : tuple of str
        Zoo variants (``<base>@<change>``) to carry beside the zoo networks.
    """
    from hwface.latency.fingerprint import Fingerprint
    from hwface.latency.lookup import resolve_fingerprint
    from hwface.latency.store import TUNED_BUDGET, LatencyStore, read_path
    from hwface.targets import load_target

    spec = load_target(target)
    digest = resolve_fingerprint(spec, fingerprint)
    figures = {**zoo_figures(), **variant_figures(variants)}
    data = ClaimsData(spec.name, "unknown device", digest, regime, budget or TUNED_BUDGET, figures, None)
    if read_path(spec.name).exists():
        with LatencyStore.for_reading(spec.name) as db:
            fields = db.fingerprints().get(digest)
            data.device = Fingerprint.from_dict(fields).describe() if fields else data.device
            load_measured(data, db)
            load_rounds(data, db)
    if predict and any(n.tvm_us is not None for n in data.networks.values()):
        load_predicted(data)
    return data
