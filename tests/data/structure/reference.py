"""Reference of the structure test assignment: the cases its functions are called on and
the model check's expected output shape (tests/data/structure/structure.yaml)."""

from __future__ import annotations

from typing import Any

import numpy as np


def attention_cases() -> list[dict[str, Any]]:
    """q, k, v of a few shapes (batch, sequence, width), float64."""
    rng = np.random.default_rng(13)
    cases = []
    for n, t, d in ((1, 3, 4), (2, 5, 8)):
        q, k, v = (rng.standard_normal((n, t, d)) for _ in range(3))
        cases.append({"name": f"q, k, v of shape ({n}, {t}, {d})", "args": [q, k, v]})
    return cases


def backward_cases() -> list[dict[str, Any]]:
    """dout, q, k, v."""
    rng = np.random.default_rng(14)
    cases = []
    for n, t, d in ((1, 3, 4), (2, 5, 8)):
        dout, q, k, v = (rng.standard_normal((n, t, d)) for _ in range(4))
        cases.append({"name": f"q, k, v of shape ({n}, {t}, {d})", "args": [dout, q, k, v]})
    return cases


def compute() -> dict[str, Any]:
    """The encoder maps (N, 10, 16) to (N, 10, 16)."""
    return {"encoder_runs": {"output_shape": [10, 16]}}
