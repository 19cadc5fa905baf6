"""HW3 reference: convolution backprop, a 1-D CNN shape table, and three small models.

The ground truth for ``rubrics/hw3.yaml``. Every value returned by :func:`compute` is
computed by PyTorch: the convolution and its gradients by ``conv2d`` and autograd, the
shape table by forward hooks on a real ``torch.nn`` model, parameter counts by
``numel()``. Only the architectures themselves (the handout's contract) are written here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as functional
from torch import nn

__all__ = ["Q3Net", "Q4Net", "Q7Net", "compute"]

# Q2 inputs, as given in the handout.
Q2_X = [[3.0, 4.0, 5.0], [2.0, 1.0, -3.0], [4.0, -2.0, 0.0]]
Q2_F = [[2.0, 0.0], [-3.0, 1.0]]

# Q3: sequences of 500 steps with 7 channels (torch is channels-first: (N, C, L)).
Q3_STEPS = 500
Q3_CHANNELS = 7
Q3_LAYER_NAMES = (
    "Conv1D",
    "MaxPool1D",
    "Conv1D",
    "MaxPool1D",
    "Conv1D",
    "MaxPool1D",
    "Flatten",
    "Dense",
    "Dense",
)

# Q4: grayscale 256x256 images; Q6: the 1x1 convolution's input; Q7: CIFAR-sized images.
Q4_INPUT = (1, 1, 256, 256)
Q6_INPUT = (1, 64, 28, 28)
Q7_INPUT = (1, 3, 32, 32)


def _trainable(module: nn.Module) -> int:
    """The number of trainable parameters of ``module`` (its own and its children's)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class Q3Net(nn.Module):
    """The handout's 1-D CNN: three valid Conv1d + MaxPool1d(2) stages, Flatten, two Linear.

    The first Linear's input size is found by a forward pass through the convolutional
    part on a dummy ``(1, 7, 500)`` batch, never typed.
    """

    def __init__(self, steps: int = Q3_STEPS, channels: int = Q3_CHANNELS) -> None:
        super().__init__()
        features = nn.Sequential(
            nn.Conv1d(channels, 16, kernel_size=3),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, kernel_size=5),
            nn.MaxPool1d(2),
            nn.Conv1d(32, 64, kernel_size=5),
            nn.MaxPool1d(2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = features(torch.zeros(1, channels, steps)).shape[1]
        self.layers = nn.Sequential(*features, nn.Linear(flat, 128), nn.Linear(128, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


class Q4Net(nn.Module):
    """The handout's binary image classifier: (N, 1, 256, 256) pixels 0..255 → (N, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.5),
            nn.Conv2d(16, 32, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.4),
            nn.Conv2d(32, 64, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.3),
            nn.Conv2d(64, 128, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(*Q4_INPUT)).shape[1]
        self.classifier = nn.Sequential(
            nn.Linear(flat, 64),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.features(x / 255.0))
        return out


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on the channel axis (dim 1)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch3 = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(16, 24, kernel_size=3, padding=1),
        )
        self.branch5 = nn.Sequential(
            nn.Conv2d(in_channels, 8, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, kernel_size=5, padding=2),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(in_channels, 8, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        return functional.relu(torch.cat(branches, dim=1))


class Q7Net(nn.Module):
    """A small Inception-style network: (N, 3, 32, 32) images → (N, 10) class scores."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.inception = InceptionBlock(32)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        with torch.no_grad():
            channels = self.head(self.inception(self.stem(torch.zeros(*Q7_INPUT)))).shape[1]
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.head(self.inception(self.stem(x))))
        return out


def _q2() -> dict[str, Any]:
    """O = conv2d(X, F) (valid, no bias), G = mean(O), L = G; gradients by autograd."""
    x = torch.tensor(Q2_X, dtype=torch.float64, requires_grad=True)
    f = torch.tensor(Q2_F, dtype=torch.float64, requires_grad=True)
    o = functional.conv2d(x[None, None], f[None, None])[0, 0]
    g = o.mean()
    g.backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None and f.grad is not None
    return {
        "q2_O": o.detach().numpy().copy(),
        "q2_G": float(g.item()),
        "q2_dL_dX": x.grad.numpy().copy(),
        "q2_dL_dF": f.grad.numpy().copy(),
    }


def _handout_shape(shape: torch.Size) -> tuple[int, ...]:
    """(1, C, L) → (L, C) for sequences; (1, F) → (F,) after Flatten (batch dim dropped)."""
    dims = tuple(int(d) for d in shape[1:])
    if len(dims) == 2:
        channels, steps = dims
        return (steps, channels)
    return dims


def _q3() -> dict[str, Any]:
    """The shape table from forward hooks on every layer of :class:`Q3Net`."""
    model = Q3Net().eval()
    layers = list(model.layers)
    if len(layers) != len(Q3_LAYER_NAMES):
        raise RuntimeError("Q3Net does not have the handout's nine layers")
    shapes: dict[int, torch.Size] = {}

    def record(index: int) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            shapes[index] = output.shape

        return hook

    handles = [layer.register_forward_hook(record(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, Q3_CHANNELS, Q3_STEPS))
    finally:
        for handle in handles:
            handle.remove()

    table: list[list[Any]] = [["Input", _handout_shape(torch.Size((1, Q3_CHANNELS, Q3_STEPS))), 0]]
    for i, (name, layer) in enumerate(zip(Q3_LAYER_NAMES, layers, strict=True)):
        table.append([name, _handout_shape(shapes[i]), _trainable(layer)])
    return {"q3_table": table, "q3_total_params": _trainable(model)}


def _q4() -> dict[str, Any]:
    model = Q4Net().eval()
    with torch.no_grad():
        out = model(torch.zeros(*Q4_INPUT))
    return {
        "q4_model": {"trainable_params": _trainable(model), "output_shape": list(out.shape[1:])}
    }


def _q6() -> dict[str, Any]:
    conv = nn.Conv2d(Q6_INPUT[1], 32, kernel_size=1)
    with torch.no_grad():
        out = conv(torch.zeros(*Q6_INPUT))
    _, channels, height, width = (int(d) for d in out.shape)
    return {"q6_output_shape": (height, width, channels), "q6_params": _trainable(conv)}


def _q7() -> dict[str, Any]:
    model = Q7Net().eval()
    with torch.no_grad():
        out = model(torch.zeros(*Q7_INPUT))
    return {"q7_model": {"output_shape": list(out.shape[1:])}}


def compute() -> dict[str, Any]:
    """Every expected value of HW3, computed by PyTorch (seeded, deterministic)."""
    torch.manual_seed(0)
    result: dict[str, Any] = {}
    result.update(_q2())
    result.update(_q3())
    result.update(_q4())
    result.update(_q6())
    result.update(_q7())
    return result
