"""benchmarks.portfolio (its modules benchmarks/portfolio_*.py), which learns
search_spaces/portfolio.yaml: the pool it draws, how it normalises and costs the trials, the
greedy choice, and the file it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks.portfolio_pool import (
    BASELINE,
    HAND_WRITTEN,
    SEARCHED,
    Candidate,
    candidate_pool,
    hand_written,
)
from benchmarks.portfolio_report import portfolio_yaml
from benchmarks.portfolio_select import anytime, greedy, normalise, trial_cost
from tasks.search.portfolio import load_portfolio, parse_portfolio
from tasks.search.spaces import load_space, validate_point

NAN = np.nan
ROOT = Path(__file__).resolve().parents[2]

# Four tables, five candidates; by construction "cheap" reaches half of the best everywhere at a
# tenth of the others' cost, "broad" 0.9 everywhere, each specialist the best on one table.
SCORES = np.array([
    [1.0, 0.0, 0.0, 0.0],  # 0: specialist of table 0
    [0.0, 1.0, 0.0, 0.0],  # 1: specialist of table 1
    [0.9, 0.9, 0.9, 0.9],  # 2: broad
    [0.5, 0.5, 0.5, 0.5],  # 3: cheap
    [0.5, 0.5, 0.5, 0.5],  # 4: cheap's scores at ten times its cost
])
COST = np.array([[1.0] * 4, [1.0] * 4, [1.0] * 4, [0.1] * 4, [1.0] * 4])


def test_greedy_takes_the_most_gain_per_cost_and_stops_when_nothing_is_left_to_gain():
    # cheap: 0.5 / 0.1; then broad adds 0.4 per unit against a specialist's 0.125; then each
    # specialist adds 0.025 (the tie goes to the first); cheap's costly copy adds nothing.
    assert greedy(SCORES, COST, 10, power=1.0) == [3, 2, 0, 1]
    assert greedy(SCORES, COST, 2, power=1.0) == [3, 2]


@pytest.mark.parametrize("power, first", [(0.0, 2), (0.5, 3), (1.0, 3)])
def test_the_cost_power_trades_gain_per_trial_for_gain_per_second(power, first):
    # Per trial broad gains most (0.9 against 0.5); per cost^0.5 cheap does (0.5 / 0.32).
    assert greedy(SCORES, COST, 3, power=power)[0] == first
    # At equal costs the power cannot matter.
    assert greedy(SCORES, np.ones_like(COST), 3, power=power)[0] == 2


@pytest.mark.parametrize("forced, expected", [
    (1, [3, 1, 2, 0]),  # second although it gains least there
    (3, [3, 2, 0, 1]),  # already first: nothing changes
    (4, [3, 4]),  # second even when it adds nothing
])
def test_the_forced_candidate_is_among_the_first_two(forced, expected):
    size = len(expected) if forced == 4 else 10
    assert greedy(SCORES, COST, size, forced=forced, power=1.0) == expected


def test_a_candidate_costs_nothing_where_it_does_not_apply():
    # A linear model that only classifies: a run skips it on the regression table, at no cost.
    scores = np.array([[1.0, NAN], [1.0, 1.0]])
    cost = np.array([[1.0, NAN], [1.5, 1.5]])
    # Per unit of cost: 0.5 / 0.5 for the classifier against 1.0 / 1.5 for the other.
    assert greedy(scores, cost, 2, power=1.0) == [0, 1]


def test_normalise_best_one_median_zero_failures_zero_clipped():
    raw = np.array([[0.6, 2.0], [0.7, 2.0], [0.8, 2.0], [0.9, 2.0], [1.0, 2.0], [NAN, NAN],
                    [0.5, 1.0]])
    applies = np.ones(raw.shape, bool)
    applies[6, 0] = False
    norm = normalise(raw, applies)
    np.testing.assert_allclose(norm[:, 0], [0, 0, 0, 0.5, 1, 0, NAN])
    # All that ran scored the same: each of them is the best; below it is not.
    np.testing.assert_allclose(norm[:, 1], [1, 1, 1, 1, 1, 0, 0])


def test_trial_cost_is_in_units_of_the_table_median():
    seconds = np.array([[1.0, 10.0], [3.0, 30.0], [2.0, 20.0], [5.0, 0.0]])
    applies = np.array([[True, True], [True, True], [True, True], [True, False]])
    cost = trial_cost(seconds, applies, overhead=0.0)
    # Medians 2.5 and 20: the same candidates cost the same on a table ten times slower.
    np.testing.assert_allclose(cost, [[0.4, 0.5], [1.2, 1.5], [0.8, 1.0], [2.0, NAN]])
    assert trial_cost(seconds, applies, overhead=1.0)[0, 0] == pytest.approx(2 / 3.5)


def test_anytime_follows_the_entries_that_apply_to_each_table():
    norm = np.array([[0.2, NAN], [1.0, 0.4], [NAN, 1.0]])
    cost = np.array([[1.0, NAN], [3.0, 1.0], [NAN, 1.0]])
    figures = anytime([0, 1, 2], norm, cost, trials=(1, 2), budgets=(0.5, 1.0, 2.0, 4.0))
    # Table 0 tries candidates 0 then 1; table 1 tries 1 then 2.
    assert figures["1 trials"] == pytest.approx((0.2 + 0.4) / 2)
    assert figures["2 trials"] == pytest.approx((1.0 + 1.0) / 2)
    assert figures["budget 0.5"] == 0.0
    assert figures["budget 1"] == pytest.approx((0.2 + 0.4) / 2)
    assert figures["budget 2"] == pytest.approx((0.2 + 1.0) / 2)
    assert figures["budget 4"] == pytest.approx(1.0)


def test_the_pool_is_seeded_inside_each_space_and_holds_the_defaults_and_old_entries():
    pool = candidate_pool(2, 0)
    assert [c.key for c in pool] == [c.key for c in candidate_pool(2, 0)]
    assert [c.key for c in pool] != [c.key for c in candidate_pool(2, 1)]
    keys = {c.key for c in pool}
    assert len(keys) == len(pool)
    for family in SEARCHED:
        for point in load_space(family).defaults:
            assert Candidate(family, dict(point), "default").key in keys
    assert {c.key for c in hand_written()} <= keys and len(hand_written()) == len(HAND_WRITTEN)
    for c in pool:
        assert c.family in SEARCHED
        assert validate_point("test", 0, c.params, load_space(c.family).params) == c.params
    drawn = [c for c in pool if c.origin == "sampled"]
    assert len(drawn) == 2 * len(SEARCHED)


def test_the_file_written_reads_back_as_the_chosen_points():
    pool = candidate_pool(1, 0)
    chosen = [pool[-1], next(c for c in pool if c.family == BASELINE), *pool[:3]]
    text = portfolio_yaml(chosen, [f"note {i}" for i in range(len(chosen))], "# header\n")
    back = parse_portfolio(yaml.safe_load(text))
    assert [(f, dict(p)) for f, p in back] == [(c.family, c.params) for c in chosen]
    # A family's first default is written as the family alone.
    assert f"- family: {BASELINE}  # note 1\n- family" in text


def test_the_learned_portfolio_says_how_to_rerun_and_parses():
    # Learned but not adopted (benchmarks/results/2026-12-06-issue16.md): the run's portfolio is
    # still the hand-written one, and both must parse.
    text = (ROOT / "benchmarks" / "results" / "2026-12-06-portfolio-learned.yaml").read_text()
    assert "benchmarks/portfolio.py" in text and "python -m benchmarks.portfolio" in text
    entries = parse_portfolio(yaml.safe_load(text))
    assert load_portfolio()
    first_two = [(f, p) for f, p in entries[:2]]
    assert (BASELINE, load_space(BASELINE).defaults[0]) in first_two
