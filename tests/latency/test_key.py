"""The canonical layer key: one builder, string round trip, same layer -> same key across networks."""

from __future__ import annotations

import onnx
import pytest

from hwface.latency.key import LayerKey, LayerKeyError, layer_key
from hwface.latency.kernels import map_to_onnx
from tests.nets import export_tiny


def _calls(path):
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.targets import load_target

    model = onnx.load(str(path))
    return map_to_onnx(fuse(import_onnx(model), load_target("host").tvm_target()), model)


def test_round_trip_and_fields(tiny_onnx):
    keys = [layer_key(c) for c in _calls(tiny_onnx) if not c.runs_as_view]
    assert [k.op for k in keys] == ["conv", "dwconv", "pwconv", "fc"]
    stem, dw = keys[0], keys[1]
    assert stem.fused == ("conv2d", "add", "prelu") and stem.activation == "prelu"
    assert (stem.kernel, stem.stride, stem.padding, stem.groups) == ((3, 3), (2, 2), (1, 1, 1, 1), 1)
    assert dw.groups == 8 and dw.activation == "relu" and dw.input_shapes == ((1, 8, 8, 8),)
    for k in keys:
        s = k.to_str()
        assert LayerKey.from_str(s) == k and LayerKey.from_str(s).to_str() == s
        assert hash(LayerKey.from_str(s)) == hash(k)


def test_same_layer_in_two_networks_has_the_same_key(tiny_onnx, tmp_path):
    other = export_tiny(tmp_path / "other.onnx", stem_in=5)  # another stem, the same block behind it
    a = [layer_key(c) for c in _calls(tiny_onnx) if not c.runs_as_view]
    b = [layer_key(c) for c in _calls(other) if not c.runs_as_view]
    assert a[0] != b[0]
    assert a[1:] == b[1:]
    assert [k.to_str() for k in a[1:]] == [k.to_str() for k in b[1:]]


def test_sampled_config_and_network_layer_share_keys(tiny_onnx):
    """The sampler's standalone pointwise conv gets the key of the same layer inside a network."""
    from hwface.latency.sampler import SampleConfig, config_onnx

    model = config_onnx(SampleConfig.make("pwconv", hw=8, cin=8, cout=16, act="none", residual=0))
    from hwface.compile.pipeline import fuse
    from hwface.compile.relax_import import import_onnx
    from hwface.targets import load_target

    calls = map_to_onnx(fuse(import_onnx(model), load_target("host").tvm_target()), model)
    (k,) = [layer_key(c) for c in calls]
    assert k == [layer_key(c) for c in _calls(tiny_onnx)][2]


@pytest.mark.parametrize("bad", ["", "op=conv", "op=conv|fused=x|in=1x2|out=1|k=a|s=-|p=-|d=-|g=-|act=-|dt=float32",
                                 "xx=conv|fused=x|in=1x2|out=1|k=-|s=-|p=-|d=-|g=-|act=-|dt=float32"])
def test_malformed_key_is_a_one_line_error(bad):
    with pytest.raises(LayerKeyError):
        LayerKey.from_str(bad)
