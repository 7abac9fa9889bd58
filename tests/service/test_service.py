"""The HTTP lookup service: a real `hwface serve` on a free loopback port, queried over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from hwface.service import MAX_KEYS, is_loopback
from tests.latency.synthetic import _keys, _synthetic_us


@pytest.fixture(scope="module")
def served(trained_fixture_folder):
    """The trained fixture predictor served by `hwface serve --port 0`: (base URL, database folder, rng)."""
    import numpy as np

    folder = trained_fixture_folder
    env = {**os.environ, "HWFACE_LATENCY_DB": str(folder)}
    proc = subprocess.Popen([sys.executable, "-m", "hwface.cli.main", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert "serving host/default" in line, line + proc.stderr.read()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert is_loopback(url.split("//")[1].rsplit(":", 1)[0])
        yield url, folder, np.random.default_rng(3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _call(url: str, path: str, body=None, raw: bytes | None = None, content_type: str = "application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health_names_the_model_and_data(served):
    url, _, _ = served
    code, body = _call(url, "/v1/health")
    assert code == 200 and body["status"] == "ok" and body["target"] == "host" and body["training_rows"] == 360
    assert len(body["fingerprint"]) == 16 and body["measured_keys"] > 0


def test_layers_answer_measured_keys_as_stored_and_the_rest_predicted(served):
    from hwface.latency.store import LatencyStore

    url, folder, rng = served
    with LatencyStore(folder / "host.sqlite") as db:
        rows = db.frame()
    stored = rows[rows["split"] == "train"].groupby("key")["median_us"].median()
    measured = list(stored.index[:5])
    unseen = [k.to_str() for k in _keys(rng, 400) if k.to_str() not in set(rows["key"])][:5]
    code, body = _call(url, "/v1/latency/layers", {"keys": measured + unseen})
    assert code == 200 and [a["key"] for a in body["layers"]] == measured + unseen
    for a in body["layers"][:5]:
        assert a["source"] == "measured" and a["latency_us"] == pytest.approx(stored[a["key"]], rel=1e-9)
    from hwface.latency.key import LayerKey

    for a in body["layers"][5:]:
        truth = _synthetic_us(LayerKey.from_str(a["key"]))
        assert a["source"] == "predicted" and a["low_us"] <= a["latency_us"] <= a["high_us"]
        assert 0.5 < a["latency_us"] / truth < 2.0


@pytest.mark.parametrize("body, raw, ctype, status, fragment", [
    ({"keys": ["op=conv|bad"]}, None, "application/json", 422, "keys"),
    ({"keys": "one"}, None, "application/json", 422, "keys"),
    (None, b'{"keys": [1', "application/json", 400, "malformed JSON"),
    ({"keys": []}, None, "text/plain", 415, "application/json"),
])
def test_bad_layer_requests_are_4xx_naming_the_field(served, body, raw, ctype, status, fragment):
    url, _, _ = served
    code, answer = _call(url, "/v1/latency/layers", body, raw=raw, content_type=ctype)
    assert code == status and fragment in answer["error"] and "Traceback" not in answer["error"]


def test_oversized_bodies_and_batches_are_413(served):
    url, _, _ = served
    code, answer = _call(url, "/v1/latency/layers", {"keys": ["x"] * (MAX_KEYS + 1)})
    assert code == 413 and "limit" in answer["error"]
    import http.client

    host, port = url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v1/latency/layers")  # announces 5 MB; the answer comes before any body is sent
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(5 << 20))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and "bytes" in json.loads(r.read())["error"]
    conn.close()


def test_concurrent_clients_get_what_one_client_gets(served):
    url, folder, rng = served
    keys = [k.to_str() for k in _keys(rng, 64)]
    _, alone = _call(url, "/v1/latency/layers", {"keys": keys})
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _call(url, "/v1/latency/layers", {"keys": keys}), range(32)))
    assert all(code == 200 and body == alone for code, body in answers)


def test_serve_refuses_a_bad_port_and_warns_off_loopback(cli, latency_db):
    from tests.conftest import assert_one_line_error

    assert_one_line_error(cli("serve", "--port", "70000"), "not a port")
    assert not is_loopback("0.0.0.0") and is_loopback("127.0.0.2") and is_loopback("::1")
    t0 = time.time()
    assert_one_line_error(cli("serve", "--port", "0"), "no trained predictor")
    assert time.time() - t0 < 60


def _spec_dict(seed: int = 0) -> dict:
    import random

    from hwface.nas import DEFAULT_SPACE
    from hwface.nas.space import draw_arch

    return draw_arch(DEFAULT_SPACE, random.Random(seed)).to_dict()


def test_network_queries_one_batch_and_ofa(served):
    url, _, _ = served
    code, one = _call(url, "/v1/latency/network", {"spec": _spec_dict(0)})
    assert code == 200 and one["low_us"] <= one["total_us"] <= one["high_us"]
    assert len(one["kernels"]) == one["measured_kernels"] + one["predicted_kernels"]
    assert {k["source"] for k in one["kernels"]} <= {"measured", "predicted"}
    ofa = {"ks": [3, 5, 7, 3] * 5, "e": [3, 4, 6, 3] * 5, "d": [2, 3, 4, 2, 2]}
    code, batch = _call(url, "/v1/latency/network", {"networks": [{"spec": _spec_dict(0)}, {"spec": _spec_dict(1)},
                                                                  {"ofa": ofa}], "breakdown": False})
    assert code == 200 and len(batch["networks"]) == 3 and "kernels" not in batch["networks"][0]
    assert batch["networks"][0]["total_us"] == pytest.approx(one["total_us"])


def _bad_spec(change) -> dict:
    spec = _spec_dict(0)
    change(spec)
    return {"spec": spec}


@pytest.mark.parametrize("body, status, fragment", [
    (_bad_spec(lambda s: s["stages"][0].update(block="resnet")), 422, "stages[0].block"),
    (_bad_spec(lambda s: s["stages"][1].update(width=-8)), 422, "stages[1].width"),
    (_bad_spec(lambda s: s.update(input_size=[8, 8])), 422, "input_size"),
    (_bad_spec(lambda s: s["stages"][2].update(depth=80)), 422, "blocks"),
    ({"model": "nosuch"}, 404, "nosuch"),
    ({"networks": [{"spec": _spec_dict(0)}, {"ofa": {"ks": [9]}}]}, 422, "networks.1.ofa"),
    ({"networks": [{"model": "x"}] * 300}, 413, "limit"),
    ({"spec": _spec_dict(0), "model": "mobilefacenet"}, 422, "exactly one"),
])
def test_bad_network_requests_are_4xx_naming_the_field(served, body, status, fragment):
    url, _, _ = served
    code, answer = _call(url, "/v1/latency/network", body)
    assert code == status and fragment in answer["error"], answer
