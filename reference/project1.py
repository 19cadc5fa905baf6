"""Project 1 reference: three networks for 16×16 single-channel digits.

The ground truth for ``rubrics/project1.yaml``. The seed (USPS digits, Keras) describes a
fully-connected network (109,722 parameters), a network of locally-connected 1-D layers
with unshared weights (33,177,770) and a CNN (315,146); the architectures below are read
off the seed's summary tables and every count and shape is computed by PyTorch, never
typed. Torch has no locally-connected layer, so :class:`LocallyConnected1d` implements
Keras' ``LocallyConnected1D`` (valid, stride 1) with ``unfold`` and one weight matrix per
output position.

The shape tables are computed on the ``meta`` device (shapes and ``numel()`` without
allocating the locally-connected network's ~130 MB of weights). The held-out split of the
digits stand-in (``load_digits`` 8×8 upsampled to 16×16 by repeating every pixel 2×2) is
used by :func:`evaluate_fc` to re-measure the accuracy of the student's trained
fully-connected weights.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = [
    "CNN",
    "ConvInsteadNet",
    "FCNet",
    "LCNet",
    "LocallyConnected1d",
    "compute",
    "digits16_split",
    "evaluate_fc",
]

IMAGE = (1, 16, 16)  # channels, height, width
FC_UNITS = (256, 128, 64, 32, 16)  # hidden layers of the seed's Dense table
LC_FILTERS = (256, 128, 64, 32, 16)  # the seed's five LocallyConnected1D layers
LC_KERNEL = 3
CLASSES = 10

Array = npt.NDArray[np.float32]


class LocallyConnected1d(nn.Module):
    """Keras ``LocallyConnected1D(filters, kernel_size)``: a valid 1-D convolution whose
    weights are not shared, one (out, in·k) matrix and one bias vector per output step.

    Input and output are channels-first, ``(N, C, L)`` → ``(N, filters, L − k + 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        length: int,
        kernel_size: int,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.out_length = length - kernel_size + 1
        if self.out_length < 1:
            raise ValueError(f"length {length} is shorter than the kernel {kernel_size}")
        fan_in = in_channels * kernel_size
        self.weight = nn.Parameter(
            torch.empty(self.out_length, out_channels, fan_in, device=device)
        )
        self.bias = nn.Parameter(torch.zeros(self.out_length, out_channels, device=device))
        if self.weight.device.type != "meta":
            bound = (6.0 / (fan_in + out_channels)) ** 0.5  # glorot_uniform, as Keras
            nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, _ = x.shape
        patches = x.unfold(2, self.kernel_size, 1)  # (N, C, L_out, k)
        patches = patches.permute(0, 2, 1, 3).reshape(n, self.out_length, c * self.kernel_size)
        out = torch.einsum("nlf,lof->nlo", patches, self.weight) + self.bias
        return out.permute(0, 2, 1)  # (N, filters, L_out)


class FCNet(nn.Module):
    """The 16×16 image as 256 inputs → Dense 256, 128, 64, 32, 16 (ReLU) → Dense 10."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = IMAGE[1] * IMAGE[2]
        for units in FC_UNITS:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, CLASSES))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x.reshape(x.shape[0], -1))  # (N, 256)
        return out


class LCNet(nn.Module):
    """The image as a sequence of 256 steps × 1 channel → five LocallyConnected1D(k=3)
    with 256, 128, 64, 32, 16 filters (ReLU) → Flatten → Dense 10."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        super().__init__()
        length, channels = IMAGE[1] * IMAGE[2], IMAGE[0]
        layers: list[nn.Module] = []
        for filters in LC_FILTERS:
            layer = LocallyConnected1d(channels, filters, length, LC_KERNEL, device=device)
            layers += [layer, nn.ReLU()]
            length, channels = layer.out_length, filters
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Linear(length * channels, CLASSES, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.reshape(x.shape[0], IMAGE[0], -1)  # (N, 1, 256)
        out: torch.Tensor = self.fc(self.features(seq))
        return out


class ConvInsteadNet(nn.Module):
    """:class:`LCNet` with shared weights: the same layers as ``Conv1d``."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        super().__init__()
        length, channels = IMAGE[1] * IMAGE[2], IMAGE[0]
        layers: list[nn.Module] = []
        for filters in LC_FILTERS:
            layers += [nn.Conv1d(channels, filters, LC_KERNEL, device=device), nn.ReLU()]
            length, channels = length - LC_KERNEL + 1, filters
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Linear(length * channels, CLASSES, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.features(x.reshape(x.shape[0], IMAGE[0], -1)))
        return out


class CNN(nn.Module):
    """Conv2D(32, 3×3) → Conv2D(64, 3×3) → MaxPool(2) → Dropout(0.25) → Flatten →
    Dense 128 → Dropout(0.5) → Dense 10 (ReLU after the convolutions and Dense 128)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(IMAGE[0], 32, 3),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
        )
        with torch.no_grad():
            device = next(self.layers.parameters()).device
            flat = self.layers(torch.zeros(1, *IMAGE, device=device)).shape[1]
        self.layers.extend(
            [nn.Linear(flat, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, CLASSES)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return out


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


_NAMES = {
    nn.Linear: "Dense",
    LocallyConnected1d: "LocallyConnected1D",
    nn.Conv2d: "Conv2D",
    nn.MaxPool2d: "MaxPooling2D",
    nn.Dropout: "Dropout",
    nn.Flatten: "Flatten",
}


def _handout_shape(shape: torch.Size) -> tuple[int, ...]:
    """Without the batch: (C, L) → (L, C); (C, H, W) → (H, W, C); (F,) stays."""
    dims = tuple(int(d) for d in shape[1:])
    if len(dims) == 2:
        return (dims[1], dims[0])
    if len(dims) == 3:
        return (dims[1], dims[2], dims[0])
    return dims


def _table(model: nn.Module, input_shape: tuple[int, ...]) -> list[list[Any]]:
    """Rows [layer, output shape, trainable params] from forward hooks; activations
    (which Keras folds into their layer) are left out, as in the seed's tables."""
    rows: list[list[Any]] = [["Input", _handout_shape(torch.Size((1, *input_shape))), 0]]
    handles = []
    for module in model.modules():
        name = _NAMES.get(type(module))
        if name is None:
            continue

        def hook(mod: nn.Module, _inputs: Any, output: torch.Tensor, name: str = name) -> None:
            rows.append([name, _handout_shape(output.shape), _trainable(mod)])

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *IMAGE, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return rows


def _on_meta(cls: type[nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return cls()


def _model_values(model: nn.Module) -> dict[str, Any]:
    with torch.no_grad():
        out = model.eval()(torch.zeros(2, *IMAGE, device="meta"))
    return {"trainable_params": _trainable(model), "output_shape": list(out.shape[1:])}


@lru_cache(maxsize=1)
def digits16_split() -> tuple[Array, Array, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``X_train, X_test, y_train, y_test`` as the handout makes them: ``load_digits``
    images / 16, each pixel repeated 2×2 (16×16), shape (N, 1, 16, 16), then
    ``train_test_split(test_size=0.25, random_state=0, stratify=y)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((2, 2))).astype(np.float32)[:, None]
    y = np.asarray(digits.target, dtype=np.int64)
    parts = train_test_split(images, y, test_size=0.25, random_state=0, stratify=y)
    x_train, x_test, y_train, y_test = (np.ascontiguousarray(p) for p in parts)
    for part in (x_train, x_test, y_train, y_test):
        part.setflags(write=False)
    return x_train, x_test, y_train, y_test


def _fc_weights(state: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The student's ``fc_weights``: a list of six ``[W, b]`` pairs, W of shape
    (out, in) as ``nn.Linear.weight``; ValueError naming what is wrong otherwise."""
    widths = [IMAGE[1] * IMAGE[2], *FC_UNITS, CLASSES]
    if not isinstance(state, list | tuple) or len(state) != len(widths) - 1:
        raise ValueError(f"fc_weights must be a list of {len(widths) - 1} [W, b] pairs")
    pairs = []
    for i, pair in enumerate(state):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"fc_weights[{i}] must be a pair [W, b]")
        w = torch.as_tensor(np.asarray(pair[0], dtype=np.float32))
        b = torch.as_tensor(np.asarray(pair[1], dtype=np.float32))
        want_w, want_b = (widths[i + 1], widths[i]), (widths[i + 1],)
        if tuple(w.shape) != want_w or tuple(b.shape) != want_b:
            raise ValueError(
                f"fc_weights[{i}] has shapes {tuple(w.shape)} and {tuple(b.shape)}; "
                f"expected {want_w} and {want_b}"
            )
        if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
            raise ValueError(f"fc_weights[{i}] holds NaN or infinite values")
        pairs.append((w, b))
    return pairs


def evaluate_fc(state: Any) -> float:
    """Test accuracy of the student's trained fully-connected weights on the held-out
    split, by the reference network (ReLU between the layers)."""
    pairs = _fc_weights(state)
    _, x_test, _, y_test = digits16_split()
    h = torch.from_numpy(np.array(x_test)).reshape(len(x_test), -1)
    with torch.no_grad():
        for i, (w, b) in enumerate(pairs):
            h = h @ w.T + b
            if i < len(pairs) - 1:
                h = torch.relu(h)
    return float((h.argmax(dim=1).numpy() == y_test).mean())


def compute() -> dict[str, Any]:
    """Every expected value of Project 1, computed by PyTorch."""
    torch.manual_seed(0)
    fc, lc, cnn = _on_meta(FCNet), _on_meta(LCNet), _on_meta(CNN)
    conv = _on_meta(ConvInsteadNet)
    _, x_test, _, y_test = digits16_split()
    return {
        "fc_model": _model_values(fc),
        "lc_model": _model_values(lc),
        "cnn_model": _model_values(cnn),
        "fc_table": _table(fc, (IMAGE[1] * IMAGE[2],)),
        "lc_table": _table(lc, (IMAGE[0], IMAGE[1] * IMAGE[2])),
        "cnn_table": _table(cnn, IMAGE),
        "fc_total_params": _trainable(fc),
        "lc_total_params": _trainable(lc),
        "cnn_total_params": _trainable(cnn),
        "lc_shared_params": _trainable(conv),
        "digits16_test_split": {
            "rows": int(x_test.shape[0]),
            "classes": len(np.unique(y_test)),
            "test_size": 0.25,
            "random_state": 0,
        },
    }
