"""A small seeded latency database on a smooth synthetic device, for predictor, lookup and service tests.

:func:`fill_fixture_db` writes training rows, three training networks and four
held-out networks (one key only they have), all under today's host fingerprint,
into the database ``$HWFACE_LATENCY_DB`` points at.
"""

from __future__ import annotations

import numpy as np

from hwface.latency.features import features, key_madds
from hwface.latency.fingerprint import current_fingerprint
from hwface.latency.key import LayerKey
from hwface.latency.store import LatencyStore, Measurement, NetworkMeasurement, db_path
from hwface.targets import load_target


def _conv_key(op: str, c_in: int, c_out: int, hw: int, k: int, s: int) -> LayerKey:
    groups = c_in if op == "dwconv" else 1
    out = (1, c_out, hw // s, hw // s)
    return LayerKey(op=op, fused=("conv2d", "add", "prelu"), input_shapes=((1, c_in, hw, hw),), output_shape=out,
                    kernel=(k, k), stride=(s, s), padding=(k // 2,) * 4, dilation=(1, 1), groups=groups,
                    activation="prelu")


def _synthetic_us(key: LayerKey) -> float:
    """A smooth 'device': 2 us + 1 ns a multiply-add + 0.2 ns a byte moved."""
    f = features(key)
    return 2.0 + key_madds(key) * 1e-3 + (f["bytes_read"] + f["bytes_written"]) * 2e-4


def _keys(rng, n: int) -> list[LayerKey]:
    out = []
    for _ in range(n):
        op = rng.choice(["conv", "dwconv", "pwconv"])
        c = int(rng.choice([16, 24, 32, 48, 64, 96, 128, 192, 256]))
        hw = int(rng.choice([7, 14, 28, 56]))
        if op == "dwconv":
            out.append(_conv_key(op, c, c, hw, int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))))
        elif op == "pwconv":
            out.append(_conv_key(op, c, int(rng.choice([16, 32, 64, 128, 256])), hw, 1, 1))
        else:
            out.append(_conv_key(op, c, int(rng.choice([16, 32, 64])), hw, 3, int(rng.choice([1, 2]))))
    return list(dict.fromkeys(out))


def _m(key: LayerKey, us: float, fp, split: str = "train", source: str = "sample:x") -> Measurement:
    return Measurement(key=key, target="host", device_key="host", tvm_version="0.27.0.post1", hwface_version="0.4.0",
                       tuned=False, regime="default", median_us=us, p10_us=us * 0.97, p90_us=us * 1.03, cv=0.01,
                       samples=5, source=source, fingerprint=fp, split=split, madds=key_madds(key))


def fill_fixture_db():
    """Training rows, three training networks, four held-out networks (one key only they have), all current."""
    rng = np.random.default_rng(0)
    fp = current_fingerprint(load_target("host"))
    keys = _keys(rng, 2000)
    train, held_only = keys[:360], keys[360:364]
    with LatencyStore(db_path("host")) as db:
        db.add(_m(k, _synthetic_us(k) * rng.uniform(0.98, 1.02), fp) for k in train)
        for i, split in enumerate(["train"] * 3 + ["heldout"] * 4):
            ks = [train[j] for j in rng.choice(len(train), 12, replace=False)] + \
                ([held_only[i - 3]] if split == "heldout" else [])
            calls = [[k.to_str(), int(rng.integers(1, 3))] for k in ks]
            if split == "heldout":
                db.add(_m(k, _synthetic_us(k), fp, split="heldout", source=f"nas-{i}") for k in ks)
            ksum = sum(_synthetic_us(LayerKey.from_str(k)) * n for k, n in calls)
            n_calls = sum(n for _, n in calls)
            db.add_network(NetworkMeasurement(
                name=f"nas-{i}" if split == "heldout" else f"zoo-{i}", origin="nas", target="host", device_key="host",
                regime="default", fingerprint=fp.digest(), split=split, kernel_calls=n_calls, kernel_sum_us=ksum,
                median_us=ksum + 0.5 * n_calls, p10_us=ksum, p90_us=ksum, cv=0.01, samples=5, kernels=calls,
                madds=sum(key_madds(LayerKey.from_str(k)) * n for k, n in calls)))
    return fp


