"""Docs generated from the code are up to date."""

from hwface.docs_gen import MODELS_MD, models_markdown


def test_models_md_is_current():
    assert MODELS_MD.read_text() == models_markdown(), "run `python -m hwface.docs_gen`"
