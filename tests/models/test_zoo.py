"""Every registered network, with no per-model code: shape, paper figures, ONNX export, input checks."""

from __future__ import annotations

import pytest
import torch

from hwface.analysis import summarize
from hwface.models import InputSizeError, create_model, get_model_info, list_models

ALL = list_models()
REQUIRED = {
    "mobilefacenet", "mobilefacenet_112x96", "mobilefacenet_96x96", "mobilefacenet_m", "mobilefacenet_s",
    "mobilefacenet_relu", "mobilefacenet_exp2", "mobilenetv1_face", "shufflenet_g3_face", "mobilenetv2_face",
    "mobilenetv2_gdconv_face", "mobilefacenet_efar", "mmobilefacenet", "seesaw_shuffle", "seesaw_share",
    "seesaw_shuffle_mobi", "dw_seesaw_v1", "dw_seesaw_v2", "frmbconv_7x7", "frmbconv_3x3", "mbconv_3x3",
    "mbconv_5x5", "mbconv_7x7", "frmbconv_fc512", "frmbconv_gdc128", "frmbconv_se_pre", "iresnet100",
}


def test_registry_holds_every_paper_network():
    assert REQUIRED <= set(ALL), sorted(REQUIRED - set(ALL))


@pytest.mark.parametrize("name", ALL)
def test_forward_gives_embedding(name):
    info = get_model_info(name)
    model = create_model(name)
    with torch.no_grad():
        y = model(torch.randn(1, 3, *info.input_size))
    assert tuple(y.shape) == (1, info.embedding_dim)
    assert torch.isfinite(y).all()
    assert float(y.norm()) > 1e-3, "degenerate embedding: BN calibration failed"


@pytest.mark.parametrize("name", ALL)
def test_figures_match_paper(name):
    info = get_model_info(name)
    s = summarize(name)
    if info.tolerance > 0.05:
        assert info.notes, f"{name}: tolerance {info.tolerance} above 5% must be explained in notes"
    if info.paper_params:
        dev = abs(s.params - info.paper_params) / info.paper_params
        assert dev <= info.tolerance, f"{name}: {s.params} params vs paper {info.paper_params:.0f} ({dev:.1%})"
    if info.paper_madds:
        dev = abs(s.madds - info.paper_madds) / info.paper_madds
        assert dev <= info.tolerance, f"{name}: {s.madds} MAdds vs paper {info.paper_madds:.0f} ({dev:.1%})"


@pytest.mark.parametrize(
    "name, params, madds, tol",
    [
        ("mobilefacenet", 0.99e6, 221e6, 0.03),
        ("seesaw_share", 1.3e6, None, 0.05),
        ("dw_seesaw_v2", 4.2e6, None, 0.05),
        ("mmobilefacenet", 2.1e6, None, 0.05),
    ],
)
def test_headline_figures(name, params, madds, tol):
    """The issue's acceptance figures, independent of what the registry claims."""
    s = summarize(name)
    assert abs(s.params - params) / params <= max(tol, 0.05)
    if madds:
        assert abs(s.madds - madds) / madds <= tol


def test_weights_are_reproducible():
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        a = create_model("mobilefacenet")(x)
        b = create_model("mobilefacenet")(x)
        c = create_model("mobilefacenet", seed=1)(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("size", [(100, 100), (8, 8), (112, 113)])
def test_bad_input_size_is_refused(size):
    with pytest.raises(InputSizeError, match="cannot take"):
        create_model("mobilefacenet", input_size=size)


def test_other_input_size_resizes_global_head():
    model = create_model("mobilefacenet", input_size=(96, 96))
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 96, 96)).shape) == (1, 128)
