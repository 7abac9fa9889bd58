"""Docs generated from the code are up to date."""

from hwface.docs_gen import MODELS_MD, models_markdown


def test_models_md_is_current():
    assert MODELS_MD.read_text() == models_markdown(), "run `python -m hwface.docs_gen`"


def test_claims_md_is_current(tmp_path):
    """docs/claims.md is what `hwface claims` makes of the shipped data (the fingerprint its header names)."""
    import re

    from hwface.workflows.claims import run_claims

    shipped = (MODELS_MD.parent / "claims.md").read_text()
    fingerprint = re.search(r"--fingerprint ([0-9a-f]+)", shipped).group(1)
    run_claims("host", tmp_path, fingerprint=fingerprint)
    assert (tmp_path / "claims.md").read_text() == shipped, (
        f"run `hwface claims --target host --fingerprint {fingerprint} --out docs`")
