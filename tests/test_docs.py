"""Docs generated from the code are up to date."""

import pytest

from hwface.docs_gen import MODELS_MD, models_markdown


def test_models_md_is_current():
    assert MODELS_MD.read_text() == models_markdown(), "run `python -m hwface.docs_gen`"


CLAIMS_REPORTS = sorted([MODELS_MD.parent / "claims.md", *MODELS_MD.parent.glob("claims-*/claims.md")])


@pytest.mark.parametrize("report", CLAIMS_REPORTS, ids=lambda p: str(p.relative_to(MODELS_MD.parent)))
def test_claims_md_is_current(report, tmp_path):
    """Each committed claims report is what `hwface claims` makes of the shipped data (the fingerprint its
    header names), docs/claims.md and one docs/claims-<device>/ folder per other device measured."""
    import re

    from hwface.workflows.claims import run_claims

    shipped = report.read_text()
    fingerprint = re.search(r"--fingerprint ([0-9a-f]+)", shipped).group(1)
    run_claims("host", tmp_path, fingerprint=fingerprint)
    assert (tmp_path / "claims.md").read_text() == shipped, (
        f"run `HWFACE_LATENCY_DB=latency_db hwface claims --target host --fingerprint {fingerprint} "
        f"--out {report.parent.relative_to(MODELS_MD.parent.parent)}` (the variable: the checkout's data, "
        "not a user copy that a write seeded earlier)")
