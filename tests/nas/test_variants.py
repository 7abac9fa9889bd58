"""Zoo variants: the base network's arch spec with exactly one thing changed."""

from __future__ import annotations

import pytest

from hwface.errors import HwfaceError
from hwface.nas import spec_madds, validate, zoo_spec
from hwface.nas.variants import CHANGES, parse_variant, variant_name, variant_spec


def _differences(a: dict, b: dict, path: str = "") -> set[str]:
    """Field names (last path component) whose values differ between two spec dicts."""
    if isinstance(a, dict):
        return set().union(*(_differences(a[k], b[k], k) for k in a))
    if isinstance(a, list):
        return set().union(set(), *(_differences(x, y, path) for x, y in zip(a, b)))
    return {path} if a != b else set()


@pytest.mark.parametrize("change", CHANGES)
def test_a_variant_changes_one_thing(change):
    base = zoo_spec("seesaw_share")
    v = variant_spec(variant_name("seesaw_share", change))
    assert validate(v) == []
    changed = _differences(base.to_dict(), v.to_dict())
    if change.startswith("act="):
        assert changed <= {"act"} and spec_madds(v) == spec_madds(base)
        assert {s.act for s in v.stages} == {v.stem.act} == {v.head.act} == {change.split("=")[1]}
    else:
        assert changed == {"se", "se_placement"} and spec_madds(v) < spec_madds(base)
        assert not any(s.se for s in v.stages)


def test_bad_variant_names_say_what_a_variant_is():
    assert parse_variant("mobilefacenet@se=off") == ("mobilefacenet", "se=off")
    with pytest.raises(HwfaceError, match="is not a variant"):
        parse_variant("mobilefacenet@act=gelu")
    with pytest.raises(HwfaceError, match="is not a variant"):
        parse_variant("mobilefacenet")
    with pytest.raises(HwfaceError, match="no arch spec"):
        variant_spec("iresnet100@se=off")
