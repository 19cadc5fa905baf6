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
handout promises both), and named edge cases: a batch of one, very large scores,
``pad = 0``, overlapping pooling windows, a small variance with a large ``eps``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as functional

__all__ = ["compute"]

Case = dict[str, Any]


def compute() -> dict[str, Any]:
    """HW2's values all come from the function checks' generators (``*_cases``)."""
    return {}


# ------------------------------------------------------------------ helpers


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _nonzero(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    """Values of either sign with |v| in [0.05, 1.05) * scale: never exactly zero."""
    magnitude = rng.uniform(0.05, 1.05, size=shape)
    sign = rng.choice([-1.0, 1.0], size=shape)
    out: np.ndarray = magnitude * sign * scale
    return out


def _distinct(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Distinct, non-zero values: no ties anywhere, so none inside a pooling window."""
    n = int(np.prod(shape))
    values = (rng.permutation(n) + 1.0) / n * rng.choice([-1.0, 1.0]) + rng.uniform(0, 1e-3)
    out: np.ndarray = values.reshape(shape)
    return out


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
    """x of rank 3 (flattened), a plain matrix, and a batch of one."""
    rng = _rng(21)
    cases = []
    for name, xs, m in (
        ("x of shape (2, 3, 4) flattened to (2, 12), 5 outputs", (2, 3, 4), 5),
        ("x of shape (4, 6), 3 outputs", (4, 6), 3),
        ("batch of one, x of shape (1, 2, 2, 2)", (1, 2, 2, 2), 4),
    ):
        d = int(np.prod(xs[1:]))
        x, w, b = _nonzero(rng, *xs), _nonzero(rng, d, m), _nonzero(rng, m)
        cases.append({"name": name, "args": [x, w, b], "dout": _nonzero(rng, xs[0], m)})
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
    for name, shape in (
        ("x of shape (3, 5) with both signs", (3, 5)),
        ("x of shape (2, 3, 2, 2)", (2, 3, 2, 2)),
        ("batch of one, x of shape (1, 6)", (1, 6)),
    ):
        cases.append({"name": name, "args": [_nonzero(rng, *shape)], "dout": _nonzero(rng, *shape)})
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
            "args": [_nonzero(rng, n, c), rng.integers(0, c, size=n)],
        },
        {
            "name": "large scores (around 1000)",
            "args": [1000.0 + _nonzero(rng, n, c, scale=50.0), rng.integers(0, c, size=n)],
        },
        {
            "name": "batch of one, 4 classes",
            "args": [_nonzero(rng, 1, 4), rng.integers(0, 4, size=1)],
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
    sqrt(var) + eps), and test mode (running statistics used, left unchanged)."""
    rng = _rng(24)
    n, d = 8, 4

    def params() -> tuple[np.ndarray, np.ndarray]:
        return 1.0 + _nonzero(rng, d, scale=0.5), _nonzero(rng, d)

    g1, b1 = params()
    g2, b2 = params()
    g3, b3 = params()
    g4, b4 = params()
    return [
        {
            "name": "train mode, no running statistics yet (defaults)",
            "args": [3.0 + _nonzero(rng, n, d, scale=2.0), g1, b1, {"mode": "train"}],
            "dout": _nonzero(rng, n, d),
        },
        {
            "name": "train mode, given running statistics, momentum 0.8",
            "args": [
                _nonzero(rng, n, d, scale=3.0),
                g2,
                b2,
                {
                    "mode": "train",
                    "momentum": 0.8,
                    "running_mean": _nonzero(rng, d),
                    "running_var": 1.0 + np.abs(_nonzero(rng, d)),
                },
            ],
            "dout": _nonzero(rng, n, d),
        },
        {
            "name": "train mode, small variance with eps = 0.01",
            "args": [_nonzero(rng, n, d, scale=0.1), g3, b3, {"mode": "train", "eps": 0.01}],
            "dout": _nonzero(rng, n, d),
        },
        {
            "name": "test mode with running statistics",
            "args": [
                _nonzero(rng, n, d, scale=2.0),
                g4,
                b4,
                {
                    "mode": "test",
                    "running_mean": _nonzero(rng, d),
                    "running_var": 0.5 + np.abs(_nonzero(rng, d)),
                },
            ],
        },
    ]


def batchnorm_backward_cases() -> list[Case]:
    """The train-mode cases of :func:`batchnorm_cases` (the backward is train mode only)."""
    return [c for c in batchnorm_cases() if c["args"][3]["mode"] == "train"]


# ------------------------------------------------------------------ dropout


def dropout_cases() -> list[Case]:
    """10 000 units at p = 0.2 and p = 0.7 (keep probabilities that tell p-as-keep from
    p-as-drop and 1/p from 1/(1 - p) apart), and test mode."""
    rng = _rng(25)
    shape = (100, 100)
    return [
        {
            "name": "train mode, p = 0.2 (keep 20 %)",
            "args": [_nonzero(rng, *shape), {"p": 0.2, "mode": "train", "seed": 123}],
            "dout": _nonzero(rng, *shape),
            "seed": 7,
        },
        {
            "name": "train mode, p = 0.7 (keep 70 %)",
            "args": [_nonzero(rng, *shape), {"p": 0.7, "mode": "train", "seed": 456}],
            "dout": _nonzero(rng, *shape),
            "seed": 8,
        },
        {
            "name": "test mode, p = 0.5",
            "args": [_nonzero(rng, 20, 30), {"p": 0.5, "mode": "test"}],
            "seed": 9,
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


def conv_cases() -> list[Case]:
    """pad 1 stride 1, pad = 0 with stride 2, a batch of one with a rectangular filter."""
    rng = _rng(26)
    specs = (
        ("3×3 filters, stride 1, pad 1", (2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
        ("pad = 0, stride 2", (2, 3, 7, 7), (2, 3, 3, 3), 2, 0),
        ("batch of one, 2×3 filters, stride 1, pad 2", (1, 2, 4, 5), (3, 2, 2, 3), 1, 2),
    )
    cases = []
    for name, xs, ws, stride, pad in specs:
        n, _, h, wd = xs
        f, _, hh, ww = ws
        ho, wo = (h + 2 * pad - hh) // stride + 1, (wd + 2 * pad - ww) // stride + 1
        cases.append(
            {
                "name": name,
                "args": [
                    _nonzero(rng, *xs),
                    _nonzero(rng, *ws),
                    _nonzero(rng, f),
                    {"stride": stride, "pad": pad},
                ],
                "dout": _nonzero(rng, n, f, ho, wo),
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


def max_pool_cases() -> list[Case]:
    """Disjoint 2×2 windows, overlapping 3×3 windows with stride 1, and overlapping
    2×2 windows with stride 1 on a batch of one (all values distinct: no ties)."""
    rng = _rng(27)
    specs = (
        ("2×2 windows, stride 2", (2, 3, 4, 4), 2, 2, 2),
        ("overlapping 3×3 windows, stride 1", (2, 2, 5, 5), 3, 3, 1),
        ("batch of one, overlapping 2×2 windows, stride 1", (1, 1, 4, 4), 2, 2, 1),
    )
    cases = []
    for name, xs, ph, pw, stride in specs:
        n, c, h, w = xs
        ho, wo = (h - ph) // stride + 1, (w - pw) // stride + 1
        cases.append(
            {
                "name": name,
                "args": [
                    _distinct(rng, *xs),
                    {"pool_height": ph, "pool_width": pw, "stride": stride},
                ],
                "dout": _nonzero(rng, n, c, ho, wo),
            }
        )
    return cases
