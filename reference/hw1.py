"""HW1 reference: a two-layer network from low-level operations, and the digits split.

The ground truth for ``rubrics/hw1.yaml`` (handout ``rubrics/hw1.md``):

* the five functions of ``hw1.py`` as the handout defines them (PyTorch float64 for the
  network and the loss; a numerically stable softmax), each with a seeded generator of
  test cases that includes the handout's edge cases (logits up to |z| = 1000, a batch of
  one, rows whose largest probability is below 0.5, …);
* the held-out split of scikit-learn's digits (``X / 16``,
  ``train_test_split(test_size=0.25, random_state=0)``) and :func:`evaluate_accuracy`,
  which the ``claim`` checks call in the grader's process on the student's harvested
  ``trained_variables`` (plain arrays: no student code runs here);
* :func:`compute`, the values the rubric's other checks compare with.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

__all__ = [
    "DIGITS_CLASSES",
    "DIGITS_FEATURES",
    "calculate_accuracy",
    "calculate_accuracy_cases",
    "compute",
    "cross_entropy",
    "cross_entropy_cases",
    "digits_split",
    "dropout",
    "evaluate_accuracy",
    "forward_pass",
    "forward_pass_cases",
    "mean_absolute_error",
    "mean_absolute_error_cases",
    "validate_variables",
]

Array = npt.NDArray[np.float64]

DIGITS_FEATURES = 64  # D: 8×8 pixels
DIGITS_CLASSES = 10  # C
LAYER_KEYS = ("layer_1_weights", "layer_1_bias", "layer_2_weights", "layer_2_bias")


# --------------------------------------------------------------------------------------
# The five functions of hw1.py
# --------------------------------------------------------------------------------------


def _t(a: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64))  # a copy: inputs stay untouched


def forward_pass(variables: Mapping[str, Any], x: Any) -> Array:
    """softmax(relu(x @ W1 + b1) @ W2 + b2), row by row; stable for any logits."""
    hidden = torch.relu(_t(x) @ _t(variables["layer_1_weights"]) + _t(variables["layer_1_bias"]))
    logits = hidden @ _t(variables["layer_2_weights"]) + _t(variables["layer_2_bias"])
    out: Array = torch.softmax(logits, dim=1).numpy()
    return out


def cross_entropy(Y: Any, predictedY: Any) -> Array:
    """The N per-example losses −Σ_c Y·log(predictedY) (0·log 0 counts as 0)."""
    out: Array = (-torch.special.xlogy(_t(Y), _t(predictedY)).sum(dim=1)).numpy()
    return out


def calculate_accuracy(y: Any, predicted_y: Any) -> float:
    """The fraction of rows whose arg-max class matches."""
    y_arr, p_arr = np.asarray(y), np.asarray(predicted_y)
    return float(np.mean(np.argmax(y_arr, axis=1) == np.argmax(p_arr, axis=1)))


def dropout(p: float, h1: Any, rng: np.random.Generator | None = None) -> Array:
    """Inverted dropout, training mode: zero each value with probability ``p`` (DROP),
    scale the survivors by 1/(1−p); ``h1`` is never modified."""
    h = np.asarray(h1, dtype=np.float64)
    if p == 0:
        return h.copy()
    gen = rng if rng is not None else np.random.default_rng()
    keep = gen.random(h.shape) >= p
    out: Array = np.where(keep, h / (1.0 - p), 0.0)
    return out


def mean_absolute_error(y: Any, predicted_y: Any) -> Array:
    """The N per-row means of |predicted_y − y|."""
    out: Array = torch.mean(torch.abs(_t(predicted_y) - _t(y)), dim=1).numpy()
    return out


# --------------------------------------------------------------------------------------
# Seeded test cases: {"name": what it tests, "args": positional arguments} (float64 NumPy)
# --------------------------------------------------------------------------------------

Case = dict[str, Any]


def _variables(
    rng: np.random.Generator, d: int, h: int, c: int, scale: float = 1.0
) -> dict[str, Array]:
    return {
        "layer_1_weights": rng.normal(0, scale / np.sqrt(d), (d, h)),
        "layer_1_bias": rng.normal(0, 0.1 * scale, h),
        "layer_2_weights": rng.normal(0, scale / np.sqrt(h), (h, c)),
        "layer_2_bias": rng.normal(0, 0.1 * scale, c),
    }


def _logits_for(variables: Mapping[str, Array], x: Array) -> Array:
    hidden = np.maximum(x @ variables["layer_1_weights"] + variables["layer_1_bias"], 0)
    logits: Array = hidden @ variables["layer_2_weights"] + variables["layer_2_bias"]
    return logits


def forward_pass_cases(seed: int = 0) -> list[Case]:
    """A small net, the digits-sized net, a batch of one, and logits up to |z| = 1000."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for name, (n, d, h, c) in (
        ("6 examples, D=5, H=4, C=3", (6, 5, 4, 3)),
        ("digits-sized: 8 examples, D=64, H=100, C=10", (8, 64, 100, 10)),
        ("a batch of one (N=1, D=64, H=100, C=10)", (1, 64, 100, 10)),
        ("3 examples, D=2, H=7, C=5", (3, 2, 7, 5)),
    ):
        cases.append({"name": name, "args": (_variables(rng, d, h, c), rng.normal(0, 1, (n, d)))})
    # Large logits: scale the second layer so the largest |logit| is exactly 1000; a
    # softmax without max-subtraction overflows (exp(1000) = inf) and returns NaN.
    for name, n, sign in (
        ("large positive logits (up to 1000)", 5, 1.0),
        ("large negative logits (down to -1000)", 4, -1.0),
    ):
        variables = _variables(rng, 8, 6, 4)
        x = rng.uniform(0, 1, (n, 8))
        factor = 1000.0 / np.abs(_logits_for(variables, x)).max()
        variables["layer_2_weights"] = variables["layer_2_weights"] * factor * sign
        variables["layer_2_bias"] = variables["layer_2_bias"] * factor * sign
        cases.append({"name": name, "args": (variables, x)})
    return cases


def _softmax_rows(z: Array) -> Array:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: Array = e / e.sum(axis=1, keepdims=True)
    return out


def _one_hot(labels: npt.NDArray[np.int64], c: int) -> Array:
    out: Array = np.eye(c)[labels]
    return out


def cross_entropy_cases(seed: int = 0) -> list[Case]:
    """One-hot labels and strictly positive probabilities (no exact zeros: the handout's
    formula is −Σ Y·log P); confident and uncertain rows, a batch of one, two classes."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for name, (n, c, spread) in (
        ("5 examples, 3 classes", (5, 3, 1.0)),
        ("8 examples, 10 classes, confident predictions", (8, 10, 3.0)),
        ("a batch of one, 10 classes", (1, 10, 1.0)),
        ("4 examples, 2 classes, very confident predictions", (4, 2, 8.0)),
    ):
        probs = _softmax_rows(rng.normal(0, spread, (n, c)))
        cases.append({"name": name, "args": (_one_hot(rng.integers(0, c, n), c), probs)})
    return cases


def calculate_accuracy_cases(seed: int = 0) -> list[Case]:
    """Rows whose largest probability is below 0.5 (element-wise rounding reads them as
    all-zero rows), some right and some wrong, a batch of one, all wrong."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for name, (n, c, spread) in (
        ("10 uncertain examples, 4 classes", (10, 4, 0.5)),
        ("12 examples, 10 classes", (12, 10, 1.0)),
        ("20 examples, 3 classes", (20, 3, 2.0)),
    ):
        probs = _softmax_rows(rng.normal(0, spread, (n, c)))
        labels = probs.argmax(axis=1)
        wrong = rng.random(n) < 0.4  # about 40 % of rows get a different label
        labels = np.where(wrong, (labels + rng.integers(1, c, n)) % c, labels)
        cases.append({"name": name, "args": (_one_hot(labels, c), probs)})
    probs = _softmax_rows(rng.normal(0, 0.3, (1, 10)))
    cases.append(
        {
            "name": "a batch of one, uncertain but right",
            "args": (_one_hot(probs.argmax(axis=1), 10), probs),
        }
    )
    probs = _softmax_rows(rng.normal(0, 0.3, (6, 5)))
    cases.append(
        {
            "name": "every prediction wrong (accuracy 0)",
            "args": (_one_hot((probs.argmax(axis=1) + 1) % 5, 5), probs),
        }
    )
    return cases


def mean_absolute_error_cases(seed: int = 0) -> list[Case]:
    """Images as rows (N×K), a batch of one, K = 1, a row with no error at all."""
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for name, (n, k) in (
        ("4 rows of 6 values", (4, 6)),
        ("a batch of one 8×8 image (1×64)", (1, 64)),
        ("3 rows of one value (K=1)", (3, 1)),
    ):
        cases.append({"name": name, "args": (rng.uniform(0, 1, (n, k)), rng.uniform(0, 1, (n, k)))})
    y = rng.uniform(0, 1, (3, 5))
    predicted = y.copy()
    predicted[1:] += rng.normal(0, 0.2, (2, 5))
    cases.append({"name": "a first row predicted exactly (error 0)", "args": (y, predicted)})
    return cases


# --------------------------------------------------------------------------------------
# The digits split and the grader's accuracy of the student's trained weights
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def digits_split() -> tuple[Array, Array, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``X_train, X_test, y_train, y_test`` exactly as the handout splits them."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    parts = train_test_split(x / 16.0, y, test_size=0.25, random_state=0)
    x_train, x_test, y_train, y_test = (np.asarray(p) for p in parts)
    for part in (x_train, x_test, y_train, y_test):
        part.setflags(write=False)
    return x_train, x_test, y_train, y_test


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape) if shape else "a single number"


def _shape_problem(key: str, got: tuple[int, ...], wanted: str) -> str:
    return (
        f"trained_variables[{key!r}] has shape {_shape_text(got)}, but the handout asks for "
        f"{wanted} (D = {DIGITS_FEATURES} inputs, C = {DIGITS_CLASSES} classes)"
    )


def validate_variables(variables: Any) -> dict[str, Array]:
    """The four arrays as float64, or ValueError saying what does not fit the handout
    (D = 64 inputs, C = 10 classes, any H; a bias of shape 1×H is read as H)."""
    if not isinstance(variables, Mapping):
        raise ValueError(
            f"trained_variables should be a dict with the keys {', '.join(LAYER_KEYS)}, "
            f"got {type(variables).__name__}"
        )
    absent = [k for k in LAYER_KEYS if k not in variables]
    if absent:
        raise ValueError(f"trained_variables has no {', '.join(repr(k) for k in absent)}")
    arrays: dict[str, Array] = {}
    for key in LAYER_KEYS:
        try:
            arr = np.asarray(variables[key], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"trained_variables[{key!r}] is not an array of numbers") from exc
        if key.endswith("bias") and arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        arrays[key] = arr
    w1 = arrays["layer_1_weights"]
    hidden = w1.shape[1] if w1.ndim == 2 and w1.shape[0] == DIGITS_FEATURES else None
    if hidden is None:
        hint = ""
        if w1.ndim == 2 and w1.shape[1] == DIGITS_FEATURES:
            hint = " (it looks transposed: the handout computes x @ W1)"
        raise ValueError(_shape_problem("layer_1_weights", w1.shape, f"{DIGITS_FEATURES}×H") + hint)
    wanted = {
        "layer_1_bias": (hidden,),
        "layer_2_weights": (hidden, DIGITS_CLASSES),
        "layer_2_bias": (DIGITS_CLASSES,),
    }
    for key, shape in wanted.items():
        got = arrays[key].shape
        if got != shape:
            hint = ""
            if len(shape) == 2 and got == shape[::-1]:
                hint = " (it looks transposed: the handout computes h @ W2)"
            raise ValueError(_shape_problem(key, got, _shape_text(shape)) + hint)
    for key, arr in arrays.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"trained_variables[{key!r}] holds NaN or infinite values")
    return arrays


def evaluate_accuracy(variables: Any) -> float:
    """Accuracy of the student's weights on the held-out digits, by the reference forward
    pass; ValueError when the weights cannot be used as the handout defines them."""
    arrays = validate_variables(variables)
    _, x_test, _, y_test = digits_split()
    probs = forward_pass(arrays, x_test)
    if not np.all(np.isfinite(probs)):
        raise ValueError("trained_variables give NaN or infinite outputs on the test split")
    return float(np.mean(np.argmax(probs, axis=1) == y_test))


# --------------------------------------------------------------------------------------
# Values for the rubric's checks
# --------------------------------------------------------------------------------------


def compute() -> dict[str, Any]:
    """The expected values of HW1 that no check computes itself: the held-out split."""
    _, x_test, _, y_test = digits_split()
    return {
        # The function checks' cases and values come from the *_cases generators above and
        # the statistical check's intervals from its rubric entry (compute_expected). The
        # claim checks re-measure on this split with evaluate_accuracy.
        "digits_test_split": {
            "rows": int(x_test.shape[0]),
            "features": int(x_test.shape[1]),
            "classes": len(np.unique(y_test)),
            "test_size": 0.25,
            "random_state": 0,
        },
    }


# --------------------------------------------------------------------------------------
# Public cases: shipped with their expected outputs in the students' self-check
# (``grade assign``); other seeds than the hidden cases, never graded.
# --------------------------------------------------------------------------------------


def _public(cases: list[Case], count: int) -> list[Case]:
    return [{**case, "name": f"public: {case['name']}"} for case in cases[:count]]


def forward_pass_public_cases() -> list[Case]:
    """Two small nets, one of them with large logits."""
    cases = forward_pass_cases(seed=2026)
    return _public([cases[0], cases[4]], 2)


def cross_entropy_public_cases() -> list[Case]:
    """Two batches of a public seed."""
    return _public(cross_entropy_cases(seed=2026), 2)


def calculate_accuracy_public_cases() -> list[Case]:
    """Two batches of a public seed, uncertain rows included."""
    return _public(calculate_accuracy_cases(seed=2026), 2)


def mean_absolute_error_public_cases() -> list[Case]:
    """Two batches of a public seed."""
    return _public(mean_absolute_error_cases(seed=2026), 2)
