"""HW2 reference: layers as forward/backward pairs, and the test cases they are graded on.

The ground truth for ``rubrics/hw2.yaml`` (handout ``rubrics/hw2.md``). Forward passes
are written with PyTorch in float64 and follow the HANDOUT, not torch's defaults:
batch norm keeps ``momentum`` of the old running statistics (``running = momentum *
running + (1 - momentum) * batch``; torch's own momentum means the opposite) and updates
``running_var`` with the biased batch variance (torch uses the unbiased one); dropout's
``p`` is the probability of KEEPING a unit. Every backward truth is torch autograd on
the reference forward, called as ``reference(dout, *forward_args)``.

Case generators (``*_cases``) return the inputs the students' functions are called on:
seeded NumPy, float64, with no exact zeros and no ties inside a pooling window (the
handout promises both), strides that divide the padded size minus the window (the
handout does not say what a stride that leaves a remainder does, floor or an error as in
the CS231n starter code's assert, so no case asks), and edge cases named in words. The
convolution and pooling cases come from :func:`grader.cases.cover`: every pair of sizes
(N, C, H, W, F, the filter's or window's height and width, the output's height and
width, stride, pad) differs in some case, so code that uses one size where another
belongs (``out_h`` for ``out_w``, ``pool_height`` for the width) fails. Each case
carries the families it belongs to ("non-square output", "pad 0", "batch of one", …),
which the check's message names when exactly those cases fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as functional

from grader.cases import case_names, cover, distinct, fits, large_logits, nonzero, output_size

__all__ = ["compute"]

Case = dict[str, Any]


def compute() -> dict[str, Any]:
    """HW2's values all come from the function checks' generators (``*_cases``)."""
    return {}


# ------------------------------------------------------------------ helpers


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _t(a: Any, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def _grads(
    forward: Any, dout: np.ndarray, arrays: list[np.ndarray], *rest: Any
) -> list[np.ndarray]:
    """Autograd of ``forward(*tensors, *rest)`` (its output ``out``) against ``dout``."""
    tensors = [_t(a, grad=True) for a in arrays]
    out = forward(*tensors, *rest)
    out.backward(_t(dout))
    return [
        _np(t.grad) if t.grad is not None else np.zeros_like(a)
        for t, a in zip(tensors, arrays, strict=True)
    ]


# ------------------------------------------------------------------ affine


def _affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1) @ w + b


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, None]:
    """out = x flattened to (N, D) times w plus b."""
    return _np(_affine(_t(x), _t(w), _t(b))), None


def affine_backward(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(dx, dw, db) by autograd; dx has x's original shape."""
    return tuple(_grads(_affine, dout, [x, w, b]))


def affine_cases() -> list[Case]:
    """x of rank 3 (flattened), a plain matrix, and a batch of one with x of rank 4. No
    two of N, D, M and x's axes are equal in every case, so code that uses one for the
    other fails somewhere."""
    rng = _rng(21)
    cases = []
    for name, xs, m, families in (
        ("x of shape (2, 3, 4) flattened to (2, 12), 5 outputs", (2, 3, 4), 5, []),
        ("x of shape (4, 6), 3 outputs", (4, 6), 3, []),
        (
            "batch of one, x of rank 4: (1, 4, 3, 2) flattened to (1, 24), 5 outputs",
            (1, 4, 3, 2),
            5,
            ["batch of one"],
        ),
    ):
        d = int(np.prod(xs[1:]))
        x, w, b = nonzero(rng, *xs), nonzero(rng, d, m), nonzero(rng, m)
        cases.append(
            {
                "name": name,
                "args": [x, w, b],
                "dout": nonzero(rng, xs[0], m),
                "families": families,
            }
        )
    return cases


# ------------------------------------------------------------------ relu


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, None]:
    """max(0, x) elementwise."""
    return _np(torch.relu(_t(x))), None


def relu_backward(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx by autograd (x has no zeros, so the gradient is unambiguous)."""
    return _grads(torch.relu, dout, [x])[0]


def relu_cases() -> list[Case]:
    """Mixed signs in rank 2 and rank 4, and a batch of one."""
    rng = _rng(22)
    cases = []
    for name, shape, families in (
        ("x of shape (3, 5) with both signs", (3, 5), []),
        ("x of rank 4, shape (2, 3, 4, 5)", (2, 3, 4, 5), []),
        ("batch of one, x of shape (1, 6)", (1, 6), ["batch of one"]),
    ):
        cases.append(
            {
                "name": name,
                "args": [nonzero(rng, *shape)],
                "dout": nonzero(rng, *shape),
                "families": families,
            }
        )
    return cases


# ------------------------------------------------------------------ softmax loss


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean cross-entropy of softmax(x) at labels y, dx) with dx by autograd."""
    xt = _t(x, grad=True)
    loss = functional.cross_entropy(xt, torch.as_tensor(np.asarray(y), dtype=torch.long))
    loss.backward()
    assert xt.grad is not None
    return np.asarray(loss.item()), _np(xt.grad)


def softmax_cases() -> list[Case]:
    """Ordinary scores, very large scores (overflow without the max subtraction), a batch
    of one."""
    rng = _rng(23)
    n, c = 6, 5
    return [
        {
            "name": "6 samples, 5 classes",
            "args": [nonzero(rng, n, c), rng.integers(0, c, size=n)],
        },
        {
            "name": "large scores (around 1000)",
            "args": [large_logits(rng, n, c), rng.integers(0, c, size=n)],
            "families": ["large logits"],
        },
        {
            "name": "batch of one, 4 classes",
            "args": [nonzero(rng, 1, 4), rng.integers(0, 4, size=1)],
            "families": ["batch of one"],
        },
    ]


# ------------------------------------------------------------------ batch norm


def _bn_train(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(dim=0)
    var = x.var(dim=0, unbiased=False)  # the handout: biased batch variance
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, None]:
    """The handout's batch norm; running statistics written back into ``bn_param``."""
    mode = bn_param["mode"]
    eps = float(bn_param.get("eps", 1e-5))
    momentum = float(bn_param.get("momentum", 0.9))
    d = np.asarray(x).shape[1]
    running_mean = np.asarray(bn_param.get("running_mean", np.zeros(d)), dtype=np.float64)
    running_var = np.asarray(bn_param.get("running_var", np.zeros(d)), dtype=np.float64)
    xt, gt, bt = _t(x), _t(gamma), _t(beta)
    if mode == "train":
        out = _bn_train(xt, gt, bt, eps)
        mean = _np(xt.mean(dim=0))
        var = _np(xt.var(dim=0, unbiased=False))
        # momentum keeps the OLD statistics (torch's momentum=0.1 is this 0.9).
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        out = gt * (xt - _t(running_mean)) / torch.sqrt(_t(running_var) + eps) + bt
    else:
        raise ValueError(f"invalid batchnorm mode {mode!r}")
    return _np(out), None


def batchnorm_backward(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, ...]:
    """(dx, dgamma, dbeta) by autograd through the train-mode forward."""
    eps = float(bn_param.get("eps", 1e-5))
    return tuple(_grads(_bn_train, dout, [x, gamma, beta], eps))


def batchnorm_cases() -> list[Case]:
    """Train mode from zero running statistics, train mode with given ones and other
    momentum/eps, a small variance with a large eps (tells sqrt(var + eps) from
    sqrt(var) + eps), and test mode (running statistics used, left unchanged). N and D
    differ in every case, with D above N in one, so an axis mixed up fails."""
    rng = _rng(24)

    def params(d: int) -> tuple[np.ndarray, np.ndarray]:
        return 1.0 + nonzero(rng, d, scale=0.5), nonzero(rng, d)

    (n1, d1), (n2, d2), (n3, d3), (n4, d4) = (8, 4), (5, 7), (6, 3), (3, 5)
    g1, b1 = params(d1)
    g2, b2 = params(d2)
    g3, b3 = params(d3)
    g4, b4 = params(d4)
    return [
        {
            "name": "train mode, no running statistics yet (defaults)",
            "args": [3.0 + nonzero(rng, n1, d1, scale=2.0), g1, b1, {"mode": "train"}],
            "dout": nonzero(rng, n1, d1),
            "families": ["train mode"],
        },
        {
            "name": "train mode, given running statistics, momentum 0.8",
            "args": [
                nonzero(rng, n2, d2, scale=3.0),
                g2,
                b2,
                {
                    "mode": "train",
                    "momentum": 0.8,
                    "running_mean": nonzero(rng, d2),
                    "running_var": 1.0 + np.abs(nonzero(rng, d2)),
                },
            ],
            "dout": nonzero(rng, n2, d2),
            "families": ["train mode"],
        },
        {
            "name": "train mode, small variance with eps = 0.01",
            "args": [nonzero(rng, n3, d3, scale=0.1), g3, b3, {"mode": "train", "eps": 0.01}],
            "dout": nonzero(rng, n3, d3),
            "families": ["train mode"],
        },
        {
            "name": "test mode with running statistics",
            "args": [
                nonzero(rng, n4, d4, scale=2.0),
                g4,
                b4,
                {
                    "mode": "test",
                    "running_mean": nonzero(rng, d4),
                    "running_var": 0.5 + np.abs(nonzero(rng, d4)),
                },
            ],
            "families": ["test mode"],
        },
    ]


def batchnorm_backward_cases() -> list[Case]:
    """The train-mode cases of :func:`batchnorm_cases` (the backward is train mode only)."""
    return [c for c in batchnorm_cases() if c["args"][3]["mode"] == "train"]


# ------------------------------------------------------------------ dropout


def dropout_cases() -> list[Case]:
    """10 000 units at p = 0.2 and p = 0.7 (keep probabilities that tell p-as-keep from
    p-as-drop and 1/p from 1/(1 - p) apart), and test mode. x is never square, and never
    zero (``dropout_backward`` is judged by ``out / x``)."""
    rng = _rng(25)
    shape = (80, 125)
    return [
        {
            "name": "train mode, p = 0.2 (keep 20 %)",
            "args": [nonzero(rng, *shape), {"p": 0.2, "mode": "train", "seed": 123}],
            "dout": nonzero(rng, *shape),
            "seed": 7,
            "families": ["train mode"],
            # no reference function names them: the message's words for the inputs
            "arg_names": ["x", "dropout_param"],
        },
        {
            "name": "train mode, p = 0.7 (keep 70 %)",
            "args": [nonzero(rng, *shape), {"p": 0.7, "mode": "train", "seed": 456}],
            "dout": nonzero(rng, *shape),
            "seed": 8,
            "families": ["train mode"],
        },
        {
            "name": "test mode, p = 0.5",
            "args": [nonzero(rng, 20, 30), {"p": 0.5, "mode": "test"}],
            "seed": 9,
            "families": ["test mode"],
        },
    ]


def dropout_backward_cases() -> list[Case]:
    """The train-mode cases of :func:`dropout_cases`."""
    return [c for c in dropout_cases() if c["args"][1]["mode"] == "train"]


# ------------------------------------------------------------------ convolution


def _conv(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, conv_param: dict[str, Any]
) -> torch.Tensor:
    return functional.conv2d(x, w, b, stride=conv_param["stride"], padding=conv_param["pad"])


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, None]:
    """Cross-correlation with zero padding ``pad`` on all four sides and ``stride``."""
    return _np(_conv(_t(x), _t(w), _t(b), conv_param)), None


def conv_backward_naive(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, ...]:
    """(dx, dw, db) by autograd."""
    return tuple(_grads(_conv, dout, [x, w, b], conv_param))


def _conv_sizes(s: Mapping[str, int]) -> dict[str, int]:
    return {
        "out_h": output_size(s["H"], s["HH"], s["stride"], s["pad"]),
        "out_w": output_size(s["W"], s["WW"], s["stride"], s["pad"]),
    }


def _conv_valid(s: Mapping[str, int]) -> bool:
    # The stride divides the padded size minus the filter (the handout leaves the other
    # case undefined), and at least two positions per axis so a loop that stops early
    # shows.
    return (
        fits(s["H"], s["HH"], s["stride"], s["pad"])
        and fits(s["W"], s["WW"], s["stride"], s["pad"])
        and min(s["out_h"], s["out_w"]) >= 2
    )


#: What a convolution case can be an instance of, by its sizes.
CONV_FAMILIES: dict[str, Callable[[Mapping[str, int]], bool]] = {
    "non-square input": lambda s: s["H"] != s["W"],
    "non-square filter": lambda s: s["HH"] != s["WW"],
    "non-square output": lambda s: s["out_h"] != s["out_w"],
    "batch of one": lambda s: s["N"] == 1,
    "C = 1": lambda s: s["C"] == 1,
    "pad 0": lambda s: s["pad"] == 0,
    "stride 2": lambda s: s["stride"] == 2,
}
_CONV_SIZES = ("N", "C", "H", "W", "F", "HH", "WW", "out_h", "out_w")


def conv_cases() -> list[Case]:
    """Few small cases in which every two of N, C, H, W, F, HH, WW, out_h and out_w (and
    stride and pad) differ somewhere, each family of :data:`CONV_FAMILIES` holds in one
    case and not in another, and one case is in none (square, stride 1, pad > 0)."""
    shapes = cover(
        {
            "N": [1, 2, 3],
            "C": [1, 2, 3],
            "H": [4, 5, 6, 7],
            "W": [4, 5, 6, 7],
            "F": [2, 3, 4],
            "HH": [2, 3],
            "WW": [2, 3],
            "stride": [1, 2],
            "pad": [0, 1, 2],
        },
        derived=_conv_sizes,
        valid=_conv_valid,
        families=CONV_FAMILIES,
        pairs=[*itertools.combinations(_CONV_SIZES, 2), ("stride", "pad")],
        # the numbers the student's loops touch: x, w and out
        cost=lambda s: (
            s["N"] * s["C"] * s["H"] * s["W"]
            + s["F"] * s["C"] * s["HH"] * s["WW"]
            + s["N"] * s["F"] * s["out_h"] * s["out_w"]
        ),
    )
    rng = _rng(26)
    cases = []
    for name, s in zip(case_names(shapes), shapes, strict=True):
        cases.append(
            {
                "name": name,
                "args": [
                    nonzero(rng, s["N"], s["C"], s["H"], s["W"]),
                    nonzero(rng, s["F"], s["C"], s["HH"], s["WW"]),
                    nonzero(rng, s["F"]),
                    {"stride": s["stride"], "pad": s["pad"]},
                ],
                "dout": nonzero(rng, s["N"], s["F"], s["out_h"], s["out_w"]),
                "families": list(s.families),
            }
        )
    return cases


# ------------------------------------------------------------------ max pooling


def _pool(x: torch.Tensor, pool_param: dict[str, Any]) -> torch.Tensor:
    return functional.max_pool2d(
        x, (pool_param["pool_height"], pool_param["pool_width"]), stride=pool_param["stride"]
    )


def max_pool_forward_naive(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[np.ndarray, None]:
    """The maximum of each window."""
    return _np(_pool(_t(x), pool_param)), None


def max_pool_backward_naive(
    dout: np.ndarray, x: np.ndarray, pool_param: dict[str, Any]
) -> np.ndarray:
    """dx by autograd: overlapping windows add up."""
    return _grads(_pool, dout, [x], pool_param)[0]


def _pool_sizes(s: Mapping[str, int]) -> dict[str, int]:
    return {
        "out_h": output_size(s["H"], s["ph"], s["stride"]),
        "out_w": output_size(s["W"], s["pw"], s["stride"]),
    }


def _pool_valid(s: Mapping[str, int]) -> bool:
    # As for the convolution: the stride divides, two windows per axis at least.
    return (
        fits(s["H"], s["ph"], s["stride"])
        and fits(s["W"], s["pw"], s["stride"])
        and min(s["out_h"], s["out_w"]) >= 2
    )


#: What a pooling case can be an instance of, by its sizes.
POOL_FAMILIES: dict[str, Callable[[Mapping[str, int]], bool]] = {
    "non-square input": lambda s: s["H"] != s["W"],
    "non-square window": lambda s: s["ph"] != s["pw"],
    "non-square output": lambda s: s["out_h"] != s["out_w"],
    "batch of one": lambda s: s["N"] == 1,
    "C = 1": lambda s: s["C"] == 1,
    "overlapping windows": lambda s: s["stride"] < max(s["ph"], s["pw"]),
}


def max_pool_cases() -> list[Case]:
    """Few small cases in which every two of N, C, H, W, pool_height, pool_width,
    stride, out_h and out_w differ somewhere, each family of :data:`POOL_FAMILIES` holds
    in one case and not in another, and one case is in none (disjoint square windows).
    All values are distinct: no ties inside a window."""
    shapes = cover(
        {
            "N": [1, 2, 3],
            "C": [1, 2, 3],
            "H": [3, 4, 5, 6, 7],
            "W": [3, 4, 5, 6, 7],
            "ph": [2, 3],
            "pw": [2, 3],
            "stride": [1, 2],
        },
        derived=_pool_sizes,
        valid=_pool_valid,
        families=POOL_FAMILIES,
        cost=lambda s: s["N"] * s["C"] * s["H"] * s["W"],
    )
    rng = _rng(27)
    cases = []
    for name, s in zip(case_names(shapes), shapes, strict=True):
        cases.append(
            {
                "name": name,
                "args": [
                    distinct(rng, s["N"], s["C"], s["H"], s["W"]),
                    {"pool_height": s["ph"], "pool_width": s["pw"], "stride": s["stride"]},
                ],
                "dout": nonzero(rng, s["N"], s["C"], s["out_h"], s["out_w"]),
                "families": list(s.families),
            }
        )
    return cases


# ------------------------------------------------------------------ public cases
# Shipped with their expected outputs in the students' self-check (``grade assign``):
# other inputs than the hidden cases above, never graded.


def affine_public_cases() -> list[Case]:
    """x of rank 3 flattened, 4 outputs."""
    rng = _rng(121)
    x, w, b = nonzero(rng, 3, 2, 5), nonzero(rng, 10, 4), nonzero(rng, 4)
    return [
        {
            "name": "public: x of shape (3, 2, 5), 4 outputs",
            "args": [x, w, b],
            "dout": nonzero(rng, 3, 4),
        }
    ]


def relu_public_cases() -> list[Case]:
    """Mixed signs, shape (4, 3)."""
    rng = _rng(122)
    return [
        {
            "name": "public: x of shape (4, 3)",
            "args": [nonzero(rng, 4, 3)],
            "dout": nonzero(rng, 4, 3),
        }
    ]


def softmax_public_cases() -> list[Case]:
    """Ordinary scores, 4 samples and 3 classes."""
    rng = _rng(123)
    return [
        {
            "name": "public: 4 samples, 3 classes",
            "args": [nonzero(rng, 4, 3), rng.integers(0, 3, size=4)],
        }
    ]


def batchnorm_public_cases() -> list[Case]:
    """Train mode from default running statistics, 6 samples and 4 features."""
    rng = _rng(124)
    gamma, beta = 1.0 + nonzero(rng, 4, scale=0.5), nonzero(rng, 4)
    return [
        {
            "name": "public: train mode, 6 samples, 4 features",
            "args": [nonzero(rng, 6, 4, scale=2.0), gamma, beta, {"mode": "train"}],
            "dout": nonzero(rng, 6, 4),
        }
    ]
