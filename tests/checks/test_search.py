from typing import Any

import pytest

from grader.checks.search import SearchSpec, grade_search
from tests.conftest import make_ctx

SPACE = {"hidden_units": [32, 64], "learning_rate": [0.01, 0.02]}


def _runs(mean: float) -> dict[str, Any]:
    return {"runs": [mean - 0.01, mean, mean + 0.01], "mean": mean, "std": 0.01}


REFERENCE = {
    "space": SPACE,
    "n_trials": 3,
    "score_key": "val_accuracy",
    "seeds": [0, 1, 2],
    "configs": {
        "hidden_units=32,learning_rate=0.01": _runs(0.90),
        "hidden_units=32,learning_rate=0.02": _runs(0.93),
        "hidden_units=64,learning_rate=0.01": _runs(0.94),
        "hidden_units=64,learning_rate=0.02": _runs(0.96),
    },
}


def spec(**kw: Any) -> SearchSpec:
    base = {
        "id": "q1_search",
        "type": "search",
        "answer": "trials",
        "best": "best",
        "search": "q1_search",
        "points": {"space": 2, "trials": 2, "best": 3, "retrain": 8},
    }
    return SearchSpec.model_validate({**base, **kw})


def trial(h: int, lr: float, acc: float) -> dict[str, Any]:
    return {"hidden_units": h, "learning_rate": lr, "val_accuracy": acc}


HONEST = [trial(32, 0.01, 0.9), trial(64, 0.02, 0.965), trial(64, 0.01, 0.94)]


def grade(trials: Any, best: Any, **kw: Any) -> Any:
    ctx = make_ctx({"trials": trials, "best": best}, {"q1_search": REFERENCE})
    return grade_search(spec(**kw), ctx)


def test_honest_search_passes() -> None:
    res = grade(HONEST, HONEST[1])
    assert (res.status, res.score, res.max_score) == ("pass", 15, 15)
    assert res.details["retrain"]["band"] == pytest.approx([0.93, 0.99])


def test_claim_five_points_above_fails_only_the_retrain_part() -> None:
    trials = [trial(32, 0.01, 0.95), trial(64, 0.01, 0.94), trial(32, 0.02, 0.93)]
    res = grade(trials, trials[0])
    assert (res.status, res.score) == ("partial", 7)
    assert "outside the band" in res.message


def test_best_not_argmax() -> None:
    res = grade(HONEST, HONEST[2])
    assert res.score == 12 and "largest" in res.message


def test_best_not_a_trial() -> None:
    res = grade(HONEST, trial(64, 0.02, 0.95))
    assert res.score == 12 and "not one of the trials" in res.message  # 0.95 is in its band


def test_outside_space_and_wrong_count() -> None:
    trials = [*HONEST, trial(128, 0.02, 0.9)]
    res = grade(trials, HONEST[1])
    assert res.score == 11
    assert "128" in res.message and "4 trials" in res.message


def test_values_compared_as_numbers() -> None:
    trials = [{**t, "learning_rate": str(t["learning_rate"])} for t in HONEST]
    assert grade(trials, trials[1]).score == 15


def test_min_half_width_and_k() -> None:
    trials = [trial(32, 0.01, 0.9), trial(64, 0.02, 0.995), trial(64, 0.01, 0.94)]
    assert grade(trials, trials[1]).score == 7
    assert grade(trials, trials[1], min_half_width=0.04).score == 15
    with pytest.raises(ValueError):
        spec(k=4)


def test_missing_and_unusable_answers() -> None:
    ctx = make_ctx({"trials": HONEST}, {"q1_search": REFERENCE})
    assert grade_search(spec(), ctx).score == 0
    res = grade("not a list", HONEST[0])
    assert (res.status, res.score) == ("fail", 0)
