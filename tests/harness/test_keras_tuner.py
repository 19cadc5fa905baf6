"""Keras Tuner objects harvested through the kernel harness and graded by ``search``.

The search's trials call a stand-in for the handout's trainer (``train_mlp`` here: a
fixed score per configuration, written by hand), so the expected marks follow from the
scores below and the reference band of ``tests/checks/test_search.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.checks.search import grade_search
from grader.models import AnswerRequest
from tests.checks.test_search import REFERENCE, spec
from tests.conftest import make_ctx
from tests.harness.test_kernel import harvest

# The handout's trainer, as far as this test needs it: a score per configuration, each
# inside the reference's band (mean ± 3·0.01) of tests/checks/test_search.py.
SCORES = {(32, 0.01): 0.90, (32, 0.02): 0.93, (64, 0.01): 0.94, (64, 0.02): 0.96}


def train_mlp(hidden_units: int, learning_rate: float) -> float:
    return SCORES[(hidden_units, learning_rate)]


@pytest.fixture(scope="module")
def tuner(tmp_path_factory: pytest.TempPathFactory, tf_keras: Any) -> Any:
    import keras_tuner as kt

    class HandoutSearch(kt.RandomSearch):  # type: ignore[misc]
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            hp = trial.hyperparameters
            score = train_mlp(hp.get("hidden_units"), hp.get("learning_rate"))
            return {"val_accuracy": score}

    hp = kt.HyperParameters()
    hp.Choice("hidden_units", [32, 64])
    hp.Choice("learning_rate", [0.01, 0.02])
    search = HandoutSearch(
        hyperparameters=hp,
        objective=kt.Objective("val_accuracy", "max"),
        max_trials=3,
        seed=0,
        directory=str(tmp_path_factory.mktemp("kt")),
        project_name="q1",
    )
    search.search(verbose=0)
    return search


def grade(tmp_path: Path, trials: object, best: object) -> Any:
    got = harvest(
        tmp_path, {"trials": trials, "best": best}, [AnswerRequest("trials"), AnswerRequest("best")]
    )
    assert all(a.status == "ok" for a in got.values()), {n: a.message for n, a in got.items()}
    ctx = make_ctx({n: a.value for n, a in got.items()}, {"q1_search": REFERENCE})
    return grade_search(spec(), ctx), got


def test_tuner_becomes_plain_trials(tmp_path: Path, tuner: Any) -> None:
    _, got = grade(tmp_path, tuner, tuner)
    inner = got["trials"].value["keras_tuner"]
    assert inner["objective"] == "val_accuracy" and inner["direction"] == "max"
    assert len(inner["trials"]) == 3
    for t in inner["trials"]:
        assert set(t) == {"hidden_units", "learning_rate", "val_accuracy"}
        assert t["val_accuracy"] == SCORES[(t["hidden_units"], t["learning_rate"])]
    assert inner["best"]["val_accuracy"] == max(t["val_accuracy"] for t in inner["trials"])


@pytest.mark.parametrize("best_form", ["tuner", "trial", "hyperparameters"])
def test_a_search_calling_the_trainer_earns_full_marks(
    tmp_path: Path, tuner: Any, best_form: str
) -> None:
    best = {
        "tuner": tuner,
        "trial": tuner.oracle.get_best_trials(1)[0],
        "hyperparameters": tuner.get_best_hyperparameters()[0],
    }[best_form]
    res, _ = grade(tmp_path, tuner, best)
    assert (res.status, res.score, res.max_score) == ("pass", 15, 15), res.message


def test_a_wrong_best_loses_the_best_points(tmp_path: Path, tuner: Any) -> None:
    trials = tuner.oracle.trials
    worst = min(trials.values(), key=lambda t: t.score)
    res, _ = grade(tmp_path, tuner, worst)
    parts = res.details["parts"]
    assert parts["best"]["ok"] is False and parts["retrain"]["ok"] is True
    assert res.score == 15 - 3
