"""reference/hw1.py: the reference follows the handout, and its cases tell the seed's
mistakes apart (each mistake fails at least one case, the right answer none)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reference import hw1


def naive_forward(variables: dict[str, Any], x: np.ndarray) -> np.ndarray:
    h = np.maximum(x @ variables["layer_1_weights"] + variables["layer_1_bias"], 0)
    e = np.exp(h @ variables["layer_2_weights"] + variables["layer_2_bias"])
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def close(a: Any, b: Any) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


def test_forward_pass_is_stable_and_the_naive_softmax_is_not() -> None:
    cases = hw1.forward_pass_cases()
    assert any(case["args"][1].shape[0] == 1 for case in cases)  # a batch of one
    naive_wrong = 0
    for case in cases:
        out = hw1.forward_pass(*case["args"])
        assert np.all(np.isfinite(out)) and np.allclose(out.sum(axis=1), 1.0)
        with np.errstate(over="ignore", invalid="ignore"):
            naive_wrong += not close(naive_forward(*case["args"]), out)
    assert naive_wrong == 2  # exactly the two large-logit cases


def test_large_logit_cases_reach_1000() -> None:
    for case in hw1.forward_pass_cases():
        if "large" in case["name"]:
            variables, x = case["args"]
            h = np.maximum(x @ variables["layer_1_weights"] + variables["layer_1_bias"], 0)
            z = h @ variables["layer_2_weights"] + variables["layer_2_bias"]
            assert np.abs(z).max() == pytest.approx(1000.0)


def test_rounding_accuracy_differs_on_every_case() -> None:
    for case in hw1.calculate_accuracy_cases():
        y, p = case["args"]
        assert 0.0 <= hw1.calculate_accuracy(y, p) <= 1.0
        assert hw1.calculate_accuracy(y, p) != pytest.approx(np.mean(np.round(p) == y))


def test_cross_entropy_and_mean_absolute_error_follow_the_handout() -> None:
    for case in hw1.cross_entropy_cases():
        y, p = case["args"]
        assert np.all(p > 0)
        assert close(hw1.cross_entropy(y, p), -np.sum(y * np.log(p), axis=1))
    for case in hw1.mean_absolute_error_cases():
        y, p = case["args"]
        assert close(hw1.mean_absolute_error(y, p), np.abs(p - y).mean(axis=1))


def test_reference_dropout_semantics() -> None:
    h = np.random.default_rng(1).uniform(0.5, 2.0, (200, 100))
    out = hw1.dropout(0.2, h, np.random.default_rng(0))
    kept = out != 0
    assert np.allclose(out[kept], h[kept] / 0.8)
    assert abs((~kept).mean() - 0.2) < 0.01
    assert np.array_equal(hw1.dropout(0.0, h), h)


def test_compute_describes_the_held_out_split() -> None:
    assert hw1.compute() == {
        "digits_test_split": {
            "rows": 450,
            "features": 64,
            "classes": 10,
            "test_size": 0.25,
            "random_state": 0,
        }
    }
