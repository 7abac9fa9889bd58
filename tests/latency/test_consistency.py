"""A network whose kernels disagree with the same kernels in the other networks is found (and only it)."""

from __future__ import annotations

import json

import pandas as pd

from hwface.latency.consistency import network_consistency
from hwface.latency.store import LatencyStore
from tests.latency.test_store import _key, _m


def _rows(slow: dict[str, float], keys: int = 6) -> pd.DataFrame:
    """Networks a..d timing the same ``keys`` kernels (10, 20, ... us); ``slow`` scales a network's timings."""
    rows = [{"key": f"k{k}", "source": net, "median_us": 10.0 * (k + 1) * slow.get(net, 1.0) * (1 + 0.01 * i)}
            for i, net in enumerate("abcd") for k in range(keys)]
    rows.append({"key": "k0", "source": "sample:x", "median_us": 1000.0})  # another schedule: ignored
    return pd.DataFrame(rows)


def test_the_disturbed_network_is_set_aside_and_the_others_agree():
    found = network_consistency(_rows({"c": 1.8}))
    assert [c.network for c in found][0] == "c" and found[0].consistent is False
    assert abs(found[0].median_ratio - 1.8) < 0.05 and found[0].off_share == 1.0
    assert all(c.consistent for c in found[1:]) and {c.network for c in found} == set("abcd")


def test_without_a_disturbed_network_every_one_is_consistent_and_few_shared_keys_are_not_judged():
    assert all(c.consistent for c in network_consistency(_rows({})))
    few = network_consistency(_rows({"b": 2.0}, keys=3))
    assert all(c.consistent is None and c.median_ratio is None and c.shared == 3 for c in few)


def test_db_check_names_the_network_to_measure_again(tmp_path, cli):
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.targets import load_target

    today = current_fingerprint(load_target("host"))
    path = tmp_path / "db.sqlite"
    with LatencyStore(path) as db:
        db.add([_m(i, source=net, key=_key(k), median_us=(10.0 + k) * (1.5 if net == "net_c" else 1.0),
                   fingerprint=today, regime="tuned", tuned=True, trials_per_kernel=16)
                for i, (net, k) in enumerate((n, k) for n in ("net_a", "net_b", "net_c") for k in range(6))])
    res = cli("db", "check", "--db", path, "--format", "json")
    assert res.code == 0, res.err
    nets = json.loads(res.out)["networks"]
    assert nets[0]["network"] == "net_c" and nets[0]["consistent"] is False
    assert [n["consistent"] for n in nets[1:]] == [True, True]
    text = cli("db", "check", "--db", path)
    assert "1 of 3 network(s) 10% or more off the others: net_c" in text.out
