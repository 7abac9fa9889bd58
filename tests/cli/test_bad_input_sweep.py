"""Every command given bad input ends in one line, ``hwface: error: ...``, exit code 2, and never a traceback.

The sweep runs in-process (one import of torch and TVM for all cases) and
captures the file descriptors, so that what C code or a child process writes
is seen too; the cases that need a real process (a closed stdout, a failing
cross compiler chosen by environment variable) run as one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, CliResult, assert_one_line_error


@dataclass(frozen=True)
class Files:
    """Bad (and a few good) inputs in ``root``, made once for the module."""

    root: Path
    onnx: Path  # a tiny static ONNX model (1x3x32x32)
    artifact: Path  # compiled from it for the host


def _bad_artifact(good: Path, root: Path, name: str, manifest: str | bytes | None = None, edit=None) -> Path:
    """A copy of ``good`` with its manifest replaced (text or bytes) or edited (``edit(dict)``)."""
    out = root / name
    shutil.copytree(good, out)
    m = out / "manifest.json"
    if edit is not None:
        data = json.loads(m.read_text())
        edit(data)
        m.write_text(json.dumps(data))
    elif isinstance(manifest, bytes):
        m.write_bytes(manifest)
    elif manifest is not None:
        m.write_text(manifest)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Files:
    import numpy as np
    import torch
    from torch import nn

    from hwface.compile import compile_artifact

    root = tmp_path_factory.mktemp("bad")
    onnx = root / "tiny.onnx"
    torch.manual_seed(0)
    torch.onnx.export(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU()).eval(), (torch.randn(1, 3, 32, 32),),
                      str(onnx), dynamo=False, opset_version=17, input_names=["input"], output_names=["out"])
    art = compile_artifact(root / "art", target="host", onnx_path=onnx).directory
    (root / "corrupt.onnx").write_bytes(b"\x08\xff\xff garbage, not a protobuf")
    (root / "empty.onnx").write_bytes(b"")
    (root / "blocker").write_text("a file where a folder is expected")
    (root / "corrupt.npy").write_bytes(b"not an array")
    (root / "empty.npy").write_bytes(b"")
    np.save(root / "wrong.npy", np.zeros((1, 3, 16, 16), "float32"))
    (root / "corrupt.sqlite").write_text("not an SQLite file, only text " * 10)
    (root / "empty.sqlite").write_bytes(b"")
    (root / "corrupt.json").write_text('{"stages": ')
    (root / "corrupt.toml").write_text("[target\nkind = ")
    (root / "incomplete.toml").write_text('kind = "cpu"\nrpc_key = "x"\n')
    _bad_artifact(art, root, "art_not_json", '{"hwface_version": ')
    _bad_artifact(art, root, "art_empty", "")
    _bad_artifact(art, root, "art_list", "[1, 2]")
    _bad_artifact(art, root, "art_binary", bytes(range(256)))
    _bad_artifact(art, root, "art_types", edit=lambda d: d.update(input="1x3x32x32"))
    _bad_artifact(art, root, "art_missing", edit=lambda d: d.pop("so_sha256"))
    _bad_artifact(art, root, "art_escape", edit=lambda d: d.update(so="../art/model.so"))
    shutil.copytree(art, root / "art_tampered")
    with open(root / "art_tampered" / "model.so", "ab") as f:
        f.write(b"\0")
    return Files(root, onnx, art)


# (id, arguments ({root}, {onnx}, {artifact}: see Files), fragments the error line must contain)
CASES = [
    # unknown names
    ("inspect-unknown-model", "inspect nosuchnet", ["unknown model"]),
    ("export-unknown-model", "export --model nosuchnet", ["unknown model"]),
    ("compile-unknown-model", "compile --model nosuchnet -o {root}/o", ["unknown model"]),
    ("compile-unknown-target", "compile --onnx {onnx} --target nosuchtarget -o {root}/o", ["unknown target"]),
    ("predict-unknown-model", "predict --model nosuchnet", []),
    ("sample-unknown-kind", "sample --kinds bogus --n 1", ["unknown kind"]),
    # corrupt and empty files
    ("compile-corrupt-target-file", "compile --onnx {onnx} --target {root}/corrupt.toml -o {root}/o", ["corrupt.toml"]),
    ("compile-incomplete-target-file", "compile --onnx {onnx} --target {root}/incomplete.toml -o {root}/o",
     ["incomplete.toml", "missing"]),
    ("compile-corrupt-onnx", "compile --onnx {root}/corrupt.onnx -o {root}/o", ["not a readable ONNX file"]),
    ("compile-empty-onnx", "compile --onnx {root}/empty.onnx -o {root}/o", ["holds no ONNX graph"]),
    ("compile-missing-onnx", "compile --onnx {root}/nothing.onnx -o {root}/o", ["no ONNX file"]),
    ("run-no-artifact", "run {root}/nothing", ["no artifact directory"]),
    ("run-manifest-not-json", "run {root}/art_not_json", ["manifest.json is malformed", "not JSON"]),
    ("run-manifest-empty", "run {root}/art_empty", ["manifest.json is malformed"]),
    ("run-manifest-not-an-object", "run {root}/art_list", ["manifest.json is malformed", "JSON object"]),
    ("run-manifest-binary", "run {root}/art_binary", ["manifest.json is malformed", "UTF-8"]),
    ("run-manifest-wrong-type", "run {root}/art_types", ["manifest.json is malformed", "input"]),
    ("run-manifest-missing-field", "run {root}/art_missing", ["manifest.json is malformed", "so_sha256"]),
    ("run-manifest-so-outside", "run {root}/art_escape", ["manifest.json is malformed", "inside the artifact"]),
    ("run-tampered-so", "run {root}/art_tampered", ["does not match its manifest"]),
    ("run-corrupt-input", "run {artifact} --input {root}/corrupt.npy", ["not a .npy file"]),
    ("run-empty-input", "run {artifact} --input {root}/empty.npy", ["not a .npy file"]),
    ("run-missing-input", "run {artifact} --input {root}/nothing.npy", ["cannot read input"]),
    ("db-missing", "db stats --db {root}/nothing.sqlite", ["no latency database"]),
    ("db-corrupt", "db stats --db {root}/corrupt.sqlite", ["not a latency database"]),
    ("db-query-corrupt", "db query --db {root}/corrupt.sqlite", ["not a latency database"]),
    ("db-folder", "db stats --db {root}", ["not a latency database"]),
    ("predict-corrupt-arch", "predict --arch {root}/corrupt.json", []),
    # wrong shapes
    ("run-wrong-shape-input", "run {artifact} --input {root}/wrong.npy", ["(1, 3, 16, 16)", "(1, 3, 32, 32)"]),
    ("compile-wrong-rank-shape", "compile --onnx {onnx} --input-shape 1,3,32 -o {root}/o", ["3 dims"]),
    ("compile-contradicting-shape", "compile --onnx {onnx} --input-shape 1,3,64,64 -o {root}/o", ["1x3x64x64"]),
    ("compile-shape-for-zoo", "compile --model mobilefacenet --input-shape 1 3 112 112", ["--input-shape goes with"]),
    ("tune-shape-for-zoo", "tune --model mobilefacenet --input-shape 1,3,112,112", ["--input-shape goes with"]),
    ("profile-shape-for-zoo", "profile --model mobilefacenet --input-shape 1 3 112 112", ["--input-shape goes"]),
    ("tune-size-for-onnx", "tune --onnx {onnx} --input-size 112 112", ["--input-size goes with"]),
    ("profile-size-for-onnx", "profile --onnx {onnx} --input-size 112 112", ["--input-size goes with"]),
    ("inspect-bad-input-size", "inspect mobilefacenet --input-size 100 100", ["cannot take"]),
    # unreachable trackers, refused SSH, addresses that are not
    ("run-unreachable-tracker", "run {artifact} --tracker 127.0.0.1:1 --timeout 5", ["cannot reach the RPC tracker"]),
    ("devices-unreachable-tracker", "devices --tracker 127.0.0.1:1", ["cannot reach the RPC tracker"]),
    ("tune-unreachable-tracker", "tune --onnx {onnx} --tracker 127.0.0.1:1 --no-baseline",
     ["cannot reach the RPC tracker", "hwface rpc tracker"]),
    ("rpc-server-unreachable-tracker", "rpc server --key x --tracker 127.0.0.1:1", ["cannot reach the RPC tracker"]),
    ("rpc-tracker-bad-host", "rpc tracker --host 256.0.0.1 --port 0", ["cannot bind '256.0.0.1'"]),
    ("rpc-tracker-bad-host-port", "rpc tracker --host 256.0.0.1 --port 9", ["exited with code 1", "gaierror", "log "]),
    ("device-bootstrap-refused-ssh", "device bootstrap --ssh nobody@127.0.0.1:1 --key x --tracker 127.0.0.1:9190",
     ["127.0.0.1:1"]),
    ("serve-bad-port", "serve --port 70000", ["70000"]),
    # unwritable outputs
    ("export-unwritable-output", "export --model mobilefacenet -o {root}/blocker/x.onnx", ["blocker is a file"]),
    ("compile-unwritable-output", "compile --onnx {onnx} --untuned -o {root}/blocker/art", ["cannot create"]),
    ("compile-missing-logs", "compile --onnx {onnx} --logs {root}/nowhere -o {root}/art", ["--logs", "no such folder"]),
    ("db-export-unwritable-output", "db export --db {root}/empty.sqlite -o {root}/blocker/x.csv", ["cannot write"]),
]


@pytest.fixture
def run_cli(capfd, tmp_path, monkeypatch):
    """``hwface ARGS...`` in-process with stdout/stderr captured at the file descriptors."""
    from hwface.cli.main import main

    monkeypatch.setenv("HWFACE_TUNING_LOGS", str(tmp_path / "tuning_logs"))  # never the repo's
    monkeypatch.setenv("HWFACE_LATENCY_DB", str(tmp_path / "latency_db"))

    def run(args: list[str]) -> CliResult:
        capfd.readouterr()
        try:
            code = main(args)
        except SystemExit as exc:  # argparse
            code = exc.code
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.mark.parametrize("args, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(run_cli, files, args, fragments):
    argv = [a.format(root=files.root, onnx=files.onnx, artifact=files.artifact) for a in args.split()]
    res = run_cli(argv)
    assert_one_line_error(res, *fragments)


@pytest.mark.parametrize("args, message", [
    ("tune --model mobilefacenet --trials -1", "argument --trials: must be at least 1"),
    ("tune --model mobilefacenet --trials 0", "argument --trials: must be at least 1"),
    ("tune --model mobilefacenet --trials-per-kernel 0", "argument --trials-per-kernel: must be at least 1"),
    ("tune --model mobilefacenet --trials-per-kernel -3", "argument --trials-per-kernel: must be at least 1"),
    ("tune --model mobilefacenet --top-kernels 0", "argument --top-kernels: must be at least 1"),
    ("sample --n 1 --trials -1", "argument --trials: must be at least 1"),
    ("compile --onnx x.onnx --input-shape 1,3,a,4", "argument --input-shape: expected whole numbers"),
    ("profile --onnx x.onnx --input-shape 1 0 4 4", "argument --input-shape: every dimension must be at least 1"),
])
def test_parser_refuses(cli, args, message):
    """argparse's own refusal: one line, ``hwface <command>: error: argument ...: ...``, exit 2."""
    res = cli(*args.split())
    assert res.code == 2 and "Traceback" not in res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hwface {args.split()[0]}: error: ") and message in lines[0], \
        res.err


@pytest.mark.parametrize("command", ["compile", "profile", "tune"])
def test_input_shape_takes_the_comma_form(command):
    from hwface.cli.common import input_shape
    from hwface.cli.main import build_parser

    parser = build_parser()
    for given in (["1,3,224,224"], ["1", "3", "224", "224"], ["1,3", "224", "224"]):
        args = parser.parse_args([command, "--onnx", "x.onnx", "--input-shape", *given])
        assert input_shape(args) == (1, 3, 224, 224)


def test_closed_stdout_is_no_traceback(tmp_path):
    """``hwface db stats --format json | head -1``: the reader has gone before hwface writes."""
    from hwface.latency.store import LatencyStore

    db = tmp_path / "l.sqlite"
    LatencyStore(db).close()
    p = subprocess.Popen([sys.executable, "-m", "hwface.cli.main", "db", "stats", "--db", str(db), "--format", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    p.stdout.close()  # long before the interpreter has started
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == "", err  # 128 + SIGPIPE, as `cat` killed by SIGPIPE


@pytest.mark.parametrize("script, fragment", [
    (None, "printed nothing"),  # /bin/false
    ('echo "warning: harmless" >&2; echo "ld.lld: error: unable to find library -lc++" >&2; '
     'echo "clang: error: linker command failed" >&2; exit 1', "ld.lld: error: unable to find library -lc++"),
], ids=["bin-false", "with-error-lines"])
def test_failing_cross_compiler(cli_proc, files, tmp_path, script, fragment):
    """The compiler's own first error line, exit 2 (TVM_NDK_CC names the compiler of android-arm64)."""
    cc = Path("/bin/false")
    if script is not None:
        cc = tmp_path / "cc"
        cc.write_text(f"#!/bin/sh\n{script}\n")
        cc.chmod(0o755)
    res = cli_proc("compile", "--onnx", files.onnx, "--target", "android-arm64", "--untuned", "-o", tmp_path / "a",
                   env={"TVM_NDK_CC": str(cc)}, timeout=300)
    assert_one_line_error(res, "linking model.so for android-arm64", str(cc), fragment)
