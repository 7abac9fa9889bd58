"""The latency-aware search on a fixture model: reproducible, within budget, a real Pareto front."""

from __future__ import annotations

import pytest

from hwface.nas.search import Candidate, candidate_of, mutate, pareto_front, search
from tests.latency.synthetic import fill_fixture_db


@pytest.fixture
def model(fixture_model):
    return fixture_model


def test_a_tiny_search_is_reproducible_and_keeps_its_budget(model):
    import random

    from hwface.nas import DEFAULT_SPACE
    from hwface.nas.space import draw_arch

    budget = candidate_of(model, draw_arch(DEFAULT_SPACE, random.Random(0))).latency_us
    run = lambda strategy: search(lambda s: candidate_of(model, s), budget, strategy=strategy,  # noqa: E731
                                  population=8, generations=3, tournament=3, seed=4)
    a, b = run("evolution"), run("evolution")
    assert [c.spec for c in a.best] == [c.spec for c in b.best] and a.evaluated == b.evaluated
    assert a.best and all(c.latency_us <= budget for c in a.best)
    assert [c.madds for c in a.best] == sorted((c.madds for c in a.best), reverse=True)
    assert a.history == sorted(a.history)  # the best within budget never gets worse
    r = run("random")
    assert r.evaluated <= 8 * 4 and r.strategy == "random"


def test_mutation_changes_one_part_and_stays_valid():
    import random

    from hwface.nas import DEFAULT_SPACE
    from hwface.nas.space import draw_arch

    rng = random.Random(2)
    parent = draw_arch(DEFAULT_SPACE, rng)
    for _ in range(30):
        child = mutate(parent, DEFAULT_SPACE, rng)
        changed = sum(a != b for a, b in zip(parent.stages, child.stages)) + (parent.stem != child.stem)
        assert changed <= 1 and len(child.stages) == len(parent.stages)  # the head may change with the last stage


def test_pareto_front_by_hand():
    mk = lambda lat, madds: Candidate(None, lat, lat, lat, madds, 0, 0)  # noqa: E731
    cands = [mk(1, 10), mk(2, 5), mk(2, 20), mk(3, 15), mk(4, 30)]
    assert [(c.latency_us, c.madds) for c in pareto_front(cands)] == [(1, 10), (2, 20), (4, 30)]


def test_search_cli_bad_input_is_one_line(cli, latency_db):
    from tests.conftest import assert_one_line_error

    assert_one_line_error(cli("search", "--budget-ms", "-1"), "no trained predictor")
    fill_fixture_db()
    from hwface.workflows.predict import train

    train("host", "default")
    assert_one_line_error(cli("search", "--budget-ms", "-1"), "must be positive")
    assert_one_line_error(cli("search", "--budget-ms", "5", "--population", "1"), "population >= 2")
    assert_one_line_error(cli("search", "--budget-ms", "5", "--verify", "1", "--fingerprint", "0000"),
                          "matches no fingerprint")
