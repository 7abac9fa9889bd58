"""Parameters and MAdds counted as the papers count them."""

from __future__ import annotations

from torch import nn

from hwface.analysis import count_params, layer_table


def test_conv_and_linear_madds():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False),      # 56x56 out: 56*56*8*3*9
        nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False),  # depthwise: 56*56*8*9
        nn.Conv2d(8, 16, 1, bias=False),            # 56*56*16*8
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    )
    rows = layer_table(net, (112, 112))
    by_op = {r.op: r for r in rows}
    assert by_op["conv"].madds == 56 * 56 * 8 * 3 * 9
    assert by_op["dwconv"].madds == 56 * 56 * 8 * 9
    assert by_op["pwconv"].madds == 56 * 56 * 16 * 8
    assert by_op["linear"].madds == 16 * 4
    assert by_op["dwconv"].groups == 8 and by_op["conv"].stride == (2, 2)
    assert by_op["conv"].output_shape == (1, 8, 56, 56)
    assert sum(r.params for r in rows) == count_params(net)


def test_grouped_pointwise_kind():
    rows = layer_table(nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 12, 1, groups=4)), (16, 16))
    assert rows[1].op == "gpwconv" and rows[1].madds == 16 * 16 * 12 * 2
