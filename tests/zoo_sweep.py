"""The zoo networks that the per-network pipeline sweeps run (compile against PyTorch, kernel keys).

Taking a zoo network through the pipeline costs 3-40 s here (iresnet100 the most),
so ``make test`` sweeps a subset with one network of each family and every
building block of the papers' tables: MobileFaceNet's bottlenecks and GDConv
head, MMobileFaceNet, channel share vs shuffle and the depthwise seesaw blocks,
the factorized 7x7, SE with swish, the FC head, MBConv, ShuffleNet's grouped
convolutions, MobileNet v1/v2. ``make test-zoo`` (``HWFACE_ZOO_SWEEP=all``) sweeps
all of them; the lighter per-network tests (export, shapes, parameter counts)
always cover every network.
"""

from __future__ import annotations

import os

from hwface.models import list_models

SUBSET = ("mobilefacenet", "mmobilefacenet", "seesaw_share", "seesaw_shuffle", "dw_seesaw_v2", "frmbconv_7x7",
          "frmbconv_se_pre", "frmbconv_fc512", "mbconv_5x5", "shufflenet_g3_face", "mobilenetv1_face",
          "mobilenetv2_face")


def swept_models() -> list[str]:
    """Every zoo network with ``HWFACE_ZOO_SWEEP=all``, else :data:`SUBSET`."""
    return list_models() if os.environ.get("HWFACE_ZOO_SWEEP") == "all" else [n for n in list_models() if n in SUBSET]
