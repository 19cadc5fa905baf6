"""Keras models graded by HW3's own ``model`` checks (rubrics/hw3.yaml), probed through
the kernel harness. Expected values are worked out by hand from the handout (HW3 Q4's
architecture on a 256×256×1 input; Q7's output of 10 scores), not taken from the grader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.checks.model import ModelSpec, grade_model
from grader.rubric import load_rubric
from tests.conftest import make_ctx
from tests.harness.test_kernel import harvest

# Q4 by hand: conv (k·k·C_in + 1)·C_out, valid, each followed by a 2×2 pool:
# 256 →252 →126; →122 →61; →59 →29; →27 →13; flatten 13·13·128 = 21632.
Q4_PARAMS = (
    (25 * 1 + 1) * 16
    + (25 * 16 + 1) * 32
    + (9 * 32 + 1) * 64
    + (9 * 64 + 1) * 128
    + (21632 + 1) * 64
    + (64 + 1) * 32
    + (32 + 1) * 1
)
EXPECTED = {
    "q4_model": {"output_shape": [1], "trainable_params": Q4_PARAMS},
    "q7_model": {"output_shape": [10], "trainable_params": 0},
}


def spec(check_id: str) -> ModelSpec:
    for question in load_rubric("hw3").questions:
        for check in question.checks:
            if check.id == check_id:
                assert isinstance(check, ModelSpec)
                return check
    raise AssertionError(check_id)


def graded(tmp_path: Path, check_id: str, model: object) -> Any:
    s = spec(check_id)
    got = harvest(tmp_path, {s.answer: model}, s.requests())
    return grade_model(s, make_ctx({n: a.value for n, a in got.items()}, EXPECTED))


def q4_model(keras: Any, *, final: str = "sigmoid") -> Any:
    """HW3 Q4 as the seeds wrote it: tf.keras Sequential with an input_shape."""
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((256, 256, 1)),
            L.Rescaling(1 / 255),
            L.Conv2D(16, 5, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.5),
            L.Conv2D(32, 5, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.4),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.3),
            L.Conv2D(128, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Dropout(0.2),
            L.Flatten(),
            L.Dense(64, activation="relu"),
            L.Dropout(0.2),
            L.Dense(32, activation="relu"),
            L.Dense(1, activation=final),
        ]
    )


def test_tf_keras_q4_earns_every_point(tmp_path: Path, tf_keras: Any) -> None:
    tf, _ = tf_keras
    res = graded(tmp_path, "q4_model", q4_model(tf.keras))
    assert (res.status, res.score, res.max_score) == ("pass", 16, 16), res.message


def test_q4_without_the_sigmoid_loses_the_range_points(tmp_path: Path, tf_keras: Any) -> None:
    _, keras = tf_keras
    res = graded(tmp_path, "q4_model", q4_model(keras, final="linear"))
    # the range part (2 pts) fails unless every raw output happens to lie in [0, 1]
    parts = {p["name"]: p["ok"] for p in res.details["parts"]}
    assert parts["runs"] and parts["output_shape"] and parts["param_count"]
    assert res.score == 16 - (0 if parts["output_range"] else 2)


def test_q7_inception_block_concatenated_on_the_channel_axis(tmp_path: Path, tf_keras: Any) -> None:
    _, keras = tf_keras
    L = keras.layers
    inp = keras.Input((32, 32, 3))
    b1 = L.Conv2D(8, 1, padding="same", activation="relu")(inp)
    b2 = L.Conv2D(8, 3, padding="same", activation="relu")(L.Conv2D(4, 1)(inp))
    b3 = L.Conv2D(8, 5, padding="same", activation="relu")(L.Conv2D(4, 1)(inp))
    b4 = L.Conv2D(8, 1)(L.MaxPooling2D(3, strides=1, padding="same")(inp))
    x = L.Concatenate(axis=-1)([b1, b2, b3, b4])
    out = L.Dense(10)(L.GlobalAveragePooling2D()(x))
    res = graded(tmp_path, "q7_model", keras.Model(inp, out))
    assert (res.status, res.score) == ("pass", res.max_score), res.message
    # concatenated on the spatial axis instead: the channel-axis part is lost
    y = L.Concatenate(axis=1)([b1, b2, b3, b4])
    out2 = L.Dense(10)(L.GlobalAveragePooling2D()(y))
    res2 = graded(tmp_path, "q7_model", keras.Model(inp, out2))
    parts = {p["name"]: p for p in res2.details["parts"]}
    assert parts["concat"]["ok"] is False and parts["output_shape"]["ok"] is True
    assert res2.score == res2.max_score - parts["concat"]["max_points"]


def test_a_keras_model_missing_its_input_shape_still_runs(tmp_path: Path, tf_keras: Any) -> None:
    _, keras = tf_keras
    model = q4_model(keras)
    bare = keras.Sequential(model.layers)  # no Input: built on the probe's batch
    res = graded(tmp_path, "q4_model", bare)
    assert res.score == 16, res.message


@pytest.fixture(autouse=True)
def _quiet(tf_keras: Any) -> None:
    """TensorFlow imported once for the module (shared session fixture)."""
