"""A zoo network with one thing changed: the activation everywhere, or SE off.

The papers argue that swish, h-swish and SE cost little; the zoo alone compares
them only through networks that differ in several things at once. A variant is the
zoo network's arch spec (:func:`hwface.nas.zoo_spec`) with one change, named
``<base>@<change>``:

- ``act=<name>``: every activation (stem, stages, head) becomes one of
  :data:`hwface.nas.spec.ACTS`;
- ``se=off``: no squeeze-excitation in any stage.

Everything else (widths, depths, kernels, head) is the base network's, so a
latency ratio between a variant and its base is the cost of that one change.
"""

from __future__ import annotations

import dataclasses

from hwface.errors import HwfaceError
from hwface.nas.spec import ACTS, ArchSpec
from hwface.nas.zoo import zoo_spec

CHANGES = (*(f"act={a}" for a in ACTS), "se=off")


def variant_name(base: str, change: str) -> str:
    """``<base>@<change>``, e.g. ``seesaw_share@act=relu``."""
    return f"{base}@{change}"


def parse_variant(name: str) -> tuple[str, str]:
    """(base, change) of a variant name; raises :class:`HwfaceError` for one that is not."""
    base, sep, change = name.partition("@")
    if not sep or change not in CHANGES:
        raise HwfaceError(f"{name!r} is not a variant: <zoo network>@<change>, change one of {', '.join(CHANGES)}")
    return base, change


def variant_spec(name: str) -> ArchSpec:
    """The arch spec of a variant: its base zoo network's spec with the one change applied."""
    base, change = parse_variant(name)
    spec = zoo_spec(base)
    if spec is None:
        raise HwfaceError(f"{base} has no arch spec (it does not fit the NAS grammar), so it has no variants")
    key, value = change.split("=")
    if key == "act":
        return dataclasses.replace(
            spec, stem=dataclasses.replace(spec.stem, act=value), head=dataclasses.replace(spec.head, act=value),
            stages=tuple(dataclasses.replace(s, act=value) for s in spec.stages))
    return dataclasses.replace(spec, stages=tuple(dataclasses.replace(s, se=False, se_placement=None)
                                                  for s in spec.stages))
