"""Reference of tests/data/nbcalls/hw5.yaml: scaled dot-product attention and its cases."""

from __future__ import annotations

from typing import Any

import numpy as np


def attention(q: Any, k: Any, v: Any) -> Any:
    """softmax(q kᵀ / sqrt(d)) v over the last two axes, float64, max-shifted."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v


def attention_cases() -> list[dict[str, Any]]:
    """Seeded cases: a batch of one, several queries and keys, d = 1, large scores."""
    rng = np.random.default_rng(0)

    def case(name: str, b: int, n: int, m: int, d: int, dv: int, scale: float = 1.0) -> Any:
        return {
            "name": name,
            "args": (
                scale * rng.standard_normal((b, n, d)),
                scale * rng.standard_normal((b, m, d)),
                rng.standard_normal((b, m, dv)),
            ),
        }

    return [
        case("batch of one, one query", 1, 1, 3, 4, 2),
        case("two sequences, 3 queries, 5 keys", 2, 3, 5, 4, 3),
        case("d = 1", 2, 2, 4, 1, 2),
        case("large scores (around 1000)", 2, 3, 3, 8, 2, scale=30.0),
    ]


def compute() -> dict[str, Any]:
    """The values the rubric's value checks compare with."""
    return {"d_model": 64}
