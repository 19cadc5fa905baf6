"""{{name}}: the reference, which computes every expected value. Never given to students.

``compute()`` returns the values that ``value`` and ``model`` checks compare with, by
check id; a ``function`` check names its reference function and its case generators
(``cases:``, hidden; ``public_cases:``, shipped in the students' self-check, each case
distinct from every hidden one). It runs in the grader's pinned child process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent


def moving_average(x: Any, k: int) -> np.ndarray:
    """The mean of every window of ``k`` consecutive values (full windows only)."""
    values = np.asarray(x, dtype=np.float64)
    out: np.ndarray = np.convolve(values, np.ones(k) / k, mode="valid")
    return out


def moving_average_cases() -> list[dict[str, Any]]:
    """Hidden cases: a plain window, a window of 1, the window as long as the input."""
    rng = np.random.default_rng(11)
    return [
        {"name": "20 values, window 4", "args": [rng.normal(size=20), 4]},
        {
            "name": "window 1 (the input itself)",
            "args": [rng.normal(size=7), 1],
            "families": ["window 1"],
        },
        {"name": "window as long as the input", "args": [rng.normal(size=5), 5]},
    ]


def moving_average_public_cases() -> list[dict[str, Any]]:
    """Public cases (the students see these and their expected outputs)."""
    return [{"name": "public: 0, 1, …, 5 with window 2", "args": [np.arange(6.0), 2]}]


class TinyNet(nn.Module):
    """The handout's model: Conv2d(1, 4, 3) → ReLU → global average pool → 4 scores."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def compute() -> dict[str, Any]:
    """Every expected value, by check id."""
    torch.manual_seed(0)
    model = TinyNet().eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 8, 8))
    signal = np.load(HERE / "data" / "signal.npy", allow_pickle=False)
    return {
        "q1_dot": float(np.dot([1.0, 2.0, 3.0], [4.0, -5.0, 6.0])),
        "q4_signal_mean": float(signal.mean()),
        "q5_model": {
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "output_shape": list(out.shape[1:]),
        },
    }
