"""The claims: the verdict rule on fixed numbers, the report on a small fixture database, bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hwface.claims.verdict import FAILS, HOLDS, SOME, UNMEASURED, Expectation, rank_verdict, verdict
from tests.conftest import assert_one_line_error

BUDGET = 16


def test_the_verdict_rule_on_fixed_numbers():
    faster = Expectation.faster(0.05)
    assert verdict(faster, [("56", 0.6), ("28", 0.9)]).verdict == HOLDS
    some = verdict(faster, [("56", 0.6), ("28", 0.97), ("7", None)])
    assert some.verdict == SOME and some.failed == ("28",) and some.cases == 2 and "not: 28" in some.text()
    assert verdict(faster, [("56", 1.2), ("28", 0.951)]).verdict == FAILS
    assert verdict(faster, [("56", None)]).verdict == UNMEASURED
    little = Expectation.costs_little(0.10)
    assert little.holds(1.09) and not little.holds(1.11)
    assert Expectation.at_most(0.5, 0.10).holds(0.54) and not Expectation.at_most(0.5, 0.10).holds(0.56)
    assert rank_verdict(0.61, 0.6).verdict == HOLDS and rank_verdict(0.3, 0.6).verdict == FAILS
    assert rank_verdict(None, 0.6).verdict == UNMEASURED


def _fill_tuned_zoo(missing: tuple[str, ...] = ()) -> dict[str, float]:
    """Every zoo network 'measured' tuned at K on a smooth synthetic device (planned kernels where the grammar fits)."""
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.latency.key import LayerKey
    from hwface.latency.store import LatencyStore, NetworkMeasurement, db_path, utc_now
    from hwface.models import list_models
    from hwface.claims.catalog import VARIANT_NETWORKS
    from hwface.nas.plan import plan_kernels
    from hwface.nas.variants import variant_spec
    from hwface.nas.zoo import zoo_spec
    from hwface.targets import load_target
    from tests.latency.synthetic import _conv_key, _m, _synthetic_us

    spec = load_target("host")
    fp = current_fingerprint(spec)
    e2e = {}
    with LatencyStore(db_path("host")) as db:
        for i, name in enumerate([*list_models(), *VARIANT_NETWORKS]):
            if name in missing:
                continue
            arch = variant_spec(name) if "@" in name else zoo_spec(name)
            kernels = ([(LayerKey.from_str(k), n) for k, n in plan_kernels(arch, spec)] if arch is not None else
                       [(_conv_key("conv", 3, 32 + 8 * i, 112, 3, 2), 1), (_conv_key("pwconv", 32, 64, 56, 1, 1), 9)])
            rows = [_m(k, _synthetic_us(k), fp, split="heldout", source=name) for k, _ in kernels]
            rows = [replace(r, regime="tuned", tuned=True, trials_per_kernel=BUDGET) for r in rows]
            db.add(rows)
            total = sum(_synthetic_us(k) * n for k, n in kernels)
            e2e[name] = total * 1.1
            db.add_network(NetworkMeasurement(
                name=name, origin="variant" if "@" in name else "zoo", spec=None, target="host", device_key="host", regime="tuned",
                trials_per_kernel=BUDGET, tuning_db_hash="h" * 16, fingerprint=fp.digest(), split="heldout",
                kernel_calls=sum(n for _, n in kernels), kernel_sum_us=total, median_us=e2e[name],
                p10_us=e2e[name] * 0.98, p90_us=e2e[name] * 1.02, cv=0.01, samples=5, madds=None, params=None,
                kernels=[[k.to_str(), n] for k, n in kernels], reference=None, measured_at=utc_now()))
            db.add_engine_comparison({
                "network": name, "target": "host", "device_key": "host", "fingerprint": fp.digest(),
                "regime": "tuned", "trials_per_kernel": BUDGET, "tuning_db_hash": None, "threads": 2, "rounds": 3,
                "tvm_median_us": e2e[name], "tvm_p10_us": e2e[name], "tvm_p90_us": e2e[name],
                "ort_median_us": e2e[name] * 1.3, "ort_p10_us": e2e[name] * 1.3, "ort_p90_us": e2e[name] * 1.3,
                "ratio": 1 / 1.3, "ratio_p10": 1 / 1.3, "ratio_p90": 1 / 1.3, "ort_version": "1.x",
                "max_abs_diff": 1e-6, "measured_at": utc_now()})
    return e2e


def test_the_report_on_a_fixture_database(latency_db, tmp_path):
    from matplotlib.image import imread

    from hwface.claims.catalog import CLAIMS
    from hwface.workflows.claims import run_claims

    e2e = _fill_tuned_zoo(missing=("mobilefacenet_exp2",))
    r = run_claims("host", tmp_path / "out")
    assert len(r.claims) == len(CLAIMS) and r.missing == ["mobilefacenet_exp2"]
    by_id = {c.id: c for c in r.claims}
    pair = by_id["faster_than_mobilenetv2"].comparisons[0]
    assert pair.measured == pytest.approx(e2e["mobilefacenet"] / e2e["mobilenetv2_face"])
    assert pair.onnxruntime == pytest.approx(pair.measured)  # the fixture's onnxruntime is 1.3x TVM everywhere
    assert pair.paper == pytest.approx(24 / 49) and pair.madds is not None and pair.predicted is None
    one_change = [c for c in by_id["activations_and_se"].comparisons if "one change" in c.label]
    assert len(one_change) == 4 and all(c.measured == pytest.approx(e2e[c.a] / e2e[c.b]) for c in one_change)
    dw = by_id["dw7_vs_3x3"]
    kernel_cases = [c for c in dw.comparisons if c.a.startswith("kernel:")]
    assert kernel_cases and all(c.measured is not None and c.paper == pytest.approx(27 / 49) for c in kernel_cases)
    assert dw.kernel_bars and dw.verdict.verdict in (HOLDS, SOME, FAILS)
    for c in r.claims:
        assert c.verdict.verdict != UNMEASURED, c.id
        assert c.verdict_predicted.verdict == UNMEASURED  # no tuned predictor for the fixture
    md = (tmp_path / "out" / "claims.md").read_text()
    assert "## Summary" in md and all(f"## {c.title}" in md for c in r.claims) and "mobilefacenet_exp2" in md
    js = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert [c["id"] for c in js["claims"]] == [c.id for c in r.claims] and js["missing"] == ["mobilefacenet_exp2"]
    pngs = [p for p in r.files if p.suffix == ".png"]
    assert len(pngs) >= len(CLAIMS) - 1  # the ranking-only claim has no ratio chart
    for p in pngs:
        assert imread(p).shape[0] > 100
        assert p.name in md


def test_claims_bad_input_is_one_line(latency_db, tmp_path, cli):
    res = cli("claims", "--out", str(tmp_path / "out"), "--no-charts")
    assert_one_line_error(res, "no zoo network of host was measured tuned", "zoo-tuned")
    (tmp_path / "file").write_text("")
    assert_one_line_error(cli("claims", "--out", str(tmp_path / "file" / "sub")), "cannot write the report")


@pytest.mark.parametrize("kernel_sum, overhead, additive", [
    (9_000.0, None, True),  # the kernels alone within 25%
    (7_000.0, None, False),  # 30% short with no overhead to account for: disturbed
    (7_000.0, 2_500.0, True),  # a tuned network's per-call overhead makes up the gap
    (9_000.0, 4_000.0, False),  # 30% over once the overhead is added: disturbed the other way
])
def test_a_network_is_additive_when_its_kernels_and_overhead_make_its_end_to_end_time(kernel_sum, overhead, additive):
    from hwface.claims.data import NetworkFigures

    n = NetworkFigures("net", madds=1, params=1, paper_madds=None, tvm_us=10_000.0, kernel_sum_us=kernel_sum,
                       overhead_us=overhead)
    assert n.additive is additive
    assert NetworkFigures("unmeasured", 1, 1, None).additive is None
