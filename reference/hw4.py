"""HW4 reference: a hyper-parameter search re-trained, an LSTM input, an invalid shape
table, batch normalisation against torch.

The ground truth for ``rubrics/hw4.yaml`` (handout ``rubrics/hw4.md``):

* Q1: the search space, the declared number of trials and the reference trainer
  (:func:`train_mlp`, a small torch MLP on scikit-learn's digits, full-batch Adam). For
  every configuration of the (tiny) space, :func:`q1_search` trains the reference over
  :data:`BAND_SEEDS` and keeps the mean and standard deviation of the validation
  accuracy; the ``search`` check turns them into the band a student's claimed score must
  fall in. These runs are part of the computed expected values, so they are cached per
  reference hash and done once per batch (about 2 s on one core);
* Q3: the LSTM input shape (timesteps, features), read from a real ``nn.LSTM`` forward;
* Q5: a 9-layer CNN shape table from forward hooks; layer 8's size goes non-positive,
  torch raises, and that row and every later one are ``"invalid"``;
* Q6: the true/false answers, :func:`batchnorm_forward` (``torch.nn.functional.batch_norm``
  in train and eval mode) with its cases, and parameter counts with and without BN.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as functional
from torch import nn

__all__ = [
    "BAND_SEEDS",
    "EPOCHS",
    "N_TRIALS",
    "SEARCH_SPACE",
    "batchnorm_cases",
    "batchnorm_forward",
    "compute",
    "digits_split",
    "gradcam",
    "gradcam_cases",
    "q1_search",
    "train_mlp",
]

Array = npt.NDArray[np.float64]

# --------------------------------------------------------------------------------------
# Q1: the search
# --------------------------------------------------------------------------------------

SEARCH_SPACE: dict[str, list[Any]] = {
    "hidden_units": [32, 64, 128],
    "learning_rate": [0.01, 0.02],
}
N_TRIALS = 4
EPOCHS = 25
SCORE_KEY = "val_accuracy"
BAND_SEEDS = (0, 1, 2, 3, 4)


@lru_cache(maxsize=1)
def digits_split() -> tuple[Array, Array, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``X_train, X_val, y_train, y_val``: digits / 16, 25 % held out, random_state 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    parts = train_test_split(x / 16.0, y, test_size=0.25, random_state=0)
    return tuple(np.asarray(p) for p in parts)  # type: ignore[return-value]


def train_mlp(hidden_units: int, learning_rate: float, seed: int = 0) -> float:
    """The handout's trainer: ``torch.manual_seed(seed)``, then Linear(64, hidden) → ReLU →
    Linear(hidden, 10) in float32, full-batch Adam on the cross-entropy for EPOCHS steps;
    returns the validation accuracy."""
    x_train, x_val, y_train, y_val = digits_split()
    with _threads(1):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(64, hidden_units), nn.ReLU(), nn.Linear(hidden_units, 10))
        optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
        xt = torch.tensor(x_train, dtype=torch.float32)
        yt = torch.tensor(y_train, dtype=torch.long)
        for _ in range(EPOCHS):
            optimiser.zero_grad()
            loss = functional.cross_entropy(model(xt), yt)
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        with torch.no_grad():
            predicted = model(torch.tensor(x_val, dtype=torch.float32)).argmax(dim=1).numpy()
    return float(np.mean(predicted == y_val))


class _threads:
    """Run torch on ``n`` threads inside the block (deterministic and cheap)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.before = 0

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)


def config_key(config: dict[str, Any]) -> str:
    """A configuration as a stable string key: ``hidden_units=32,learning_rate=0.03``."""
    return ",".join(f"{name}={config[name]!r}" for name in SEARCH_SPACE)


def q1_search() -> dict[str, Any]:
    """The space, the declared number of trials, and every configuration's reference runs
    (validation accuracy over BAND_SEEDS: mean, sample standard deviation, the runs)."""
    runs: dict[str, dict[str, Any]] = {}
    names = list(SEARCH_SPACE)
    for values in itertools.product(*(SEARCH_SPACE[n] for n in names)):
        config = dict(zip(names, values, strict=True))
        scores = [train_mlp(seed=seed, **config) for seed in BAND_SEEDS]
        runs[config_key(config)] = {
            "config": config,
            "runs": scores,
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores, ddof=1)),
        }
    return {
        "space": SEARCH_SPACE,
        "n_trials": N_TRIALS,
        "score_key": SCORE_KEY,
        "seeds": list(BAND_SEEDS),
        "configs": runs,
    }


# --------------------------------------------------------------------------------------
# Q3: the LSTM input
# --------------------------------------------------------------------------------------

Q3_FEATURES = 5  # year, month, day, hour, temperature: one row per sample


def _q3() -> dict[str, Any]:
    """Each row is one sample of one time step with 5 features: (timesteps, features)."""
    batch = torch.zeros(16, 1, Q3_FEATURES)
    lstm = nn.LSTM(input_size=Q3_FEATURES, hidden_size=8, batch_first=True)
    lstm(batch)  # raises unless the last axis is the features axis
    return {"q3_input_shape": tuple(int(d) for d in batch.shape[1:])}


# --------------------------------------------------------------------------------------
# Q5: a 9-layer CNN whose eighth layer cannot be applied
# --------------------------------------------------------------------------------------

Q5_INPUT = (1, 3, 256, 256)  # torch is channels-first; the handout writes (H, W, C)
INVALID = "invalid"


def q5_layers() -> list[tuple[str, nn.Module]]:
    """The handout's nine layers (valid convolutions unless said, with bias)."""
    return [
        ("Conv2D(64, 3x3, same)", nn.Conv2d(3, 64, 3, padding=1)),
        ("Conv2D(32, 5x5, stride 2)", nn.Conv2d(64, 32, 5, stride=2)),
        ("MaxPool2D(2)", nn.MaxPool2d(2)),
        ("Conv2D(128, 3x3, same)", nn.Conv2d(32, 128, 3, padding=1)),
        ("Conv2D(64, 5x5, stride 3)", nn.Conv2d(128, 64, 5, stride=3)),
        ("MaxPool2D(2)", nn.MaxPool2d(2)),
        ("Conv2D(256, 3x3, dilation 2)", nn.Conv2d(64, 256, 3, dilation=2)),
        ("Conv2D(256, 5x5, dilation 2)", nn.Conv2d(256, 256, 5, dilation=2)),
        ("MaxPool2D(2)", nn.MaxPool2d(2)),
    ]


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _q5() -> dict[str, Any]:
    """Rows [name, (H, W, C) | "invalid", params]: applied layer by layer; once torch
    refuses a layer (a size went non-positive), that row and all later ones are invalid."""
    x: torch.Tensor | None = torch.zeros(*Q5_INPUT)
    rows: list[list[Any]] = [["Input", (256, 256, 3), 0]]
    with torch.no_grad():
        for name, layer in q5_layers():
            shape: Any = INVALID
            if x is not None:
                try:
                    x = layer(x)
                    _, c, h, w = (int(d) for d in x.shape)
                    shape = (h, w, c)
                except RuntimeError:
                    x = None
            rows.append([name, shape, _trainable(layer)])
    # Q5b: the padding that keeps the size of a 5x5, dilation 2, stride 1 convolution.
    padding = next(
        p
        for p in range(0, 10)
        if nn.Conv2d(1, 1, 5, dilation=2, padding=p)(torch.zeros(1, 1, 32, 32)).shape[-1] == 32
    )
    return {"q5_table": rows, "q5_same_padding": padding}


# --------------------------------------------------------------------------------------
# Q6: batch normalisation
# --------------------------------------------------------------------------------------

# a) the four statements of the handout, in order.
Q6_TRUE_FALSE = ["false", "true", "false", "true"]


def batchnorm_forward(
    x: Any,
    gamma: Any,
    beta: Any,
    running_mean: Any,
    running_var: Any,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[Array, Array, Array]:
    """``(out, new_running_mean, new_running_var)`` exactly as
    ``torch.nn.functional.batch_norm`` computes them (inputs are never modified)."""
    rm = torch.tensor(np.array(running_mean, dtype=np.float64))
    rv = torch.tensor(np.array(running_var, dtype=np.float64))
    out = functional.batch_norm(
        torch.tensor(np.array(x, dtype=np.float64)),
        rm,
        rv,
        weight=torch.tensor(np.array(gamma, dtype=np.float64)),
        bias=torch.tensor(np.array(beta, dtype=np.float64)),
        training=bool(training),
        momentum=float(momentum),
        eps=float(eps),
    )
    return out.numpy(), rm.numpy(), rv.numpy()


def batchnorm_cases(seed: int = 0) -> list[dict[str, Any]]:
    """Train mode (a batch of 8, a batch of 2 where biased and unbiased variance differ
    most), eval mode (running statistics), a non-default momentum and eps."""
    rng = np.random.default_rng(seed)
    cases: list[dict[str, Any]] = []
    for name, n, d, training, momentum, eps in (
        ("train mode, 8 examples, 5 features", 8, 5, True, 0.1, 1e-5),
        ("train mode, a batch of 2", 2, 4, True, 0.1, 1e-5),
        ("train mode, momentum 0.3, eps 1e-3", 16, 3, True, 0.3, 1e-3),
        ("eval mode: running statistics", 6, 5, False, 0.1, 1e-5),
    ):
        cases.append(
            {
                "name": name,
                "args": (
                    rng.normal(2.0, 3.0, (n, d)),
                    rng.uniform(0.5, 1.5, d),
                    rng.normal(0.0, 0.5, d),
                    rng.normal(0.0, 1.0, d),
                    rng.uniform(0.5, 2.0, d),
                    training,
                    momentum,
                    eps,
                ),
            }
        )
    return cases


def _q6() -> dict[str, Any]:
    """Linear(10, 20) with bias, then the same followed by BatchNorm1d(20) (gamma and beta)."""
    plain = nn.Linear(10, 20)
    with_bn = nn.Sequential(nn.Linear(10, 20), nn.BatchNorm1d(20))
    return {
        "q6_true_false": list(Q6_TRUE_FALSE),
        "q6_params_without_bn": _trainable(plain),
        "q6_params_with_bn": _trainable(with_bn),
    }


# --------------------------------------------------------------------------------------
# Q7: Grad-CAM on a fixed tiny CNN with seeded weights
# --------------------------------------------------------------------------------------

# The architecture, as plain data: [name, torch.nn layer, keyword arguments].
Q7_LAYERS: list[list[Any]] = [
    ["conv1", "Conv2d", {"in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1}],
    ["relu1", "ReLU", {}],
    ["pool1", "MaxPool2d", {"kernel_size": 2}],
    ["conv2", "Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "padding": 1}],
    ["relu2", "ReLU", {}],
    ["gap", "AdaptiveAvgPool2d", {"output_size": 1}],
    ["flatten", "Flatten", {}],
    ["fc", "Linear", {"in_features": 6, "out_features": 5}],
]


def build_model(spec: dict[str, Any]) -> nn.Sequential:
    """The float64 eval-mode ``nn.Sequential`` a ``{"__torch_model__": …}`` argument
    describes (the same construction as the sandbox worker's ``_torch_model``)."""
    inner = spec["__torch_model__"]
    layers = OrderedDict(
        (str(name), getattr(nn, kind)(**dict(kwargs))) for name, kind, kwargs in inner["layers"]
    )
    model = nn.Sequential(layers).double()
    model.load_state_dict(
        {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in inner["state"].items()}
    )
    return model.eval()


def q7_model(seed: int) -> dict[str, Any]:
    """The tiny CNN with weights drawn by ``torch.manual_seed(seed)``, as plain data."""
    torch.manual_seed(seed)
    layers = OrderedDict(
        (str(name), getattr(nn, kind)(**dict(kwargs))) for name, kind, kwargs in Q7_LAYERS
    )
    net = nn.Sequential(layers).double()
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return {"__torch_model__": {"layers": Q7_LAYERS, "state": state}}


def gradcam(model: Any, x: Any, target_class: int, layer_name: str) -> Array:
    """Grad-CAM at ``layer_name``: w_k = spatial mean of ∂y_c/∂A_k (y_c the class score
    before any softmax), map = ReLU(sum_k w_k A_k), shape (H', W') of that layer's output."""
    net = build_model(model) if isinstance(model, dict) else model
    layer = dict(net.named_modules())[layer_name]
    acts: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: acts.append(out))
    try:
        scores = net(torch.tensor(np.array(x, dtype=np.float64)))
    finally:
        handle.remove()
    activation = acts[0]
    (grads,) = torch.autograd.grad(scores[0, int(target_class)], activation)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activation).sum(dim=1))[0]
    out: Array = cam.detach().numpy().copy()
    return out


def gradcam_cases(seed: int = 0) -> list[dict[str, Any]]:
    """Two seeded models, 8×8 single-channel inputs, the last conv layer, its ReLU and the
    first conv layer, several target classes."""
    rng = np.random.default_rng(seed)
    cases: list[dict[str, Any]] = []
    for name, model_seed, target, layer in (
        ("model seed 0, class 3, layer conv2", 0, 3, "conv2"),
        ("model seed 0, class 0, layer relu2", 0, 0, "relu2"),
        ("model seed 1, class 4, layer conv2", 1, 4, "conv2"),
        ("model seed 1, class 2, layer conv1 (before pooling)", 1, 2, "conv1"),
    ):
        x = rng.uniform(0.0, 1.0, (1, 1, 8, 8))
        cases.append({"name": name, "args": (q7_model(model_seed), x, target, layer)})
    return cases


def compute() -> dict[str, Any]:
    """Every expected value of HW4 except the search's and the function's (their checks
    compute those from this module), computed by PyTorch."""
    torch.manual_seed(0)
    result: dict[str, Any] = {}
    result.update(_q3())
    result.update(_q5())
    result.update(_q6())
    return result


def batchnorm_public_cases() -> list[dict[str, Any]]:
    """Public cases for the students' self-check (``grade assign``): a train-mode and an
    eval-mode batch of another seed than the hidden cases."""
    cases = batchnorm_cases(seed=2026)
    return [{**c, "name": f"public: {c['name']}"} for c in (cases[0], cases[3])]
