# mypy: disable-error-code="no-untyped-call"
"""Generate the Project 1 sample submissions under ``submissions/project1/``.

Run from anywhere: ``python tests/golden/make_project1_samples.py``. Each student is a
real Jupyter notebook (nbformat v4, deterministic cell ids, no outputs) using Python,
NumPy, PyTorch, scikit-learn and matplotlib; each runs in well under a minute in a fresh
kernel. The expected grades are written by hand in
``tests/golden/project1/<student>.yaml``.

Only the folders of the students listed in :data:`STUDENTS` are replaced.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "submissions" / "project1"

Cell = Any  # nbformat.NotebookNode (nbformat is untyped)
Notebook = Any


def md(text: str) -> Cell:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> Cell:
    return new_code_cell(text.strip("\n"))


SETUP = """
%matplotlib inline
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

torch.manual_seed(0)
digits = load_digits()
images = np.kron(digits.images / 16.0, np.ones((2, 2))).astype(np.float32)[:, None]
X_train, X_test, y_train, y_test = train_test_split(
    images, digits.target, test_size=0.25, random_state=0, stratify=digits.target)
Xtr, ytr = torch.from_numpy(X_train), torch.from_numpy(y_train).long()
Xte, yte = torch.from_numpy(X_test), torch.from_numpy(y_test).long()


def count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
"""

FC = """
class FCNet(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        sizes = [256, 256, 128, 64, 32, 16]
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(16, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.reshape(len(x), -1))


fc_model = FCNet()
fc_table = [["Input", (256,), 0]]
width = 256
for units in [256, 128, 64, 32, 16, 10]:
    fc_table.append(["Dense", (units,), (width + 1) * units])
    width = units
fc_total_params = count(fc_model)
"""

LC_LAYER = """
class LocallyConnected1d(nn.Module):
    \"\"\"Keras LocallyConnected1D: one weight matrix per output position.\"\"\"

    def __init__(self, in_channels, filters, length, kernel_size=3):
        super().__init__()
        self.k = kernel_size
        self.out_length = length - kernel_size + 1
        fan_in = in_channels * kernel_size
        bound = (6 / (fan_in + filters)) ** 0.5
        self.weight = nn.Parameter(
            torch.empty(self.out_length, filters, fan_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(self.out_length, filters))

    def forward(self, x):                                   # (N, C, L)
        n, c, _ = x.shape
        patches = x.unfold(2, self.k, 1).permute(0, 2, 1, 3).reshape(n, self.out_length, -1)
        out = torch.einsum("nlf,lof->nlo", patches, self.weight) + self.bias
        return out.permute(0, 2, 1)                         # (N, filters, L_out)
"""

# The mistake: "locally connected" built from Conv1d, so the weights are shared.
LC_LAYER_SHARED = """
class LocallyConnected1d(nn.Module):
    def __init__(self, in_channels, filters, length, kernel_size=3):
        super().__init__()
        self.out_length = length - kernel_size + 1
        self.conv = nn.Conv1d(in_channels, filters, kernel_size)

    def forward(self, x):
        return self.conv(x)
"""

LC_NET = """
class LCNet(nn.Module):
    def __init__(self, layer=LocallyConnected1d):
        super().__init__()
        length, channels, layers = 256, 1, []
        for filters in [256, 128, 64, 32, 16]:
            lc = layer(channels, filters, length)
            layers += [lc, nn.ReLU()]
            length, channels = lc.out_length, filters
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Linear(length * channels, 10)

    def forward(self, x):
        return self.fc(self.features(x.reshape(len(x), 1, 256)))


lc_model = LCNet()
lc_total_params = count(lc_model)
"""

LC_TABLE = """
lc_table = [["Input", (256, 1), 0]]
length, channels = 256, 1
for filters in [256, 128, 64, 32, 16]:
    length -= 2
    lc_table.append(["LocallyConnected1D", (length, filters),
                     length * (3 * channels * filters + filters)])
    channels = filters
lc_table.append(["Flatten", (length * channels,), 0])
lc_table.append(["Dense", (10,), (length * channels + 1) * 10])


class Conv1dLayer(nn.Conv1d):
    def __init__(self, in_channels, filters, length, kernel_size=3):
        super().__init__(in_channels, filters, kernel_size)
        self.out_length = length - kernel_size + 1


lc_shared_params = count(LCNet(layer=Conv1dLayer))
"""

# The shared-weight student counts every layer as a Conv1D (per filter, not per position).
LC_TABLE_SHARED = """
lc_table = [["Input", (256, 1), 0]]
length, channels = 256, 1
for filters in [256, 128, 64, 32, 16]:
    length -= 2
    lc_table.append(["LocallyConnected1D", (length, filters), 3 * channels * filters + filters])
    channels = filters
lc_table.append(["Flatten", (length * channels,), 0])
lc_table.append(["Dense", (10,), (length * channels + 1) * 10])
lc_shared_params = lc_total_params
"""

# The seed pair pasted Keras' summary (batch dimension "None" included) and never
# computed the shared-weight count.
LC_TABLE_SEED = """
lc_table = [
    ["Input", "(None, 256, 1)", 0],
    ["locally_connected1d_1", "(None, 254, 256)", 260096],
    ["locally_connected1d_2", "(None, 252, 128)", 24804864],
    ["locally_connected1d_3", "(None, 250, 64)", 6160000],
    ["locally_connected1d_4", "(None, 248, 32)", 1531648],
    ["locally_connected1d_5", "(None, 246, 16)", 381792],
    ["flatten_1", "(None, 3936)", 0],
    ["dense_1", "(None, 10)", 39370],
]
"""

CNN = """
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
            nn.Linear(6 * 6 * 64, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


cnn_model = CNN()
cnn_table = [
    ["Input", (16, 16, 1), 0],
    ["Conv2D", (14, 14, 32), 3 * 3 * 1 * 32 + 32],
    ["Conv2D", (12, 12, 64), 3 * 3 * 32 * 64 + 64],
    ["MaxPooling2D", (6, 6, 64), 0],
    ["Dropout", (6, 6, 64), 0],
    ["Flatten", (2304,), 0],
    ["Dense", (128,), 2304 * 128 + 128],
    ["Dropout", (128,), 0],
    ["Dense", (10,), 128 * 10 + 10],
]
cnn_total_params = count(cnn_model)
"""

TRAIN = """
def train(model, lr=1e-3, batch_size=32, epochs=3, momentum=0.0, adam=False, seed=0,
          rows=None):
    torch.manual_seed(seed)
    X, y = (Xtr, ytr) if rows is None else (Xtr[rows], ytr[rows])
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if adam
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum))
    history = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X))
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            history.append((model(Xte).argmax(1) == yte).float().mean().item())
    return history


history = train(fc_model, lr=2e-3, batch_size=32, epochs=10, adam=True)
fc_test_accuracy = history[-1]
fc_weights = [[layer.weight.detach().numpy(), layer.bias.detach().numpy()]
              for layer in fc_model.modules() if isinstance(layer, nn.Linear)]
print(fc_test_accuracy)
"""

PLOT = """
SMALL = dict(rows=torch.arange(400), epochs=2)  # quick experiments: 400 images, 2 epochs


def plot(curves, title):
    fig, ax = plt.subplots(figsize=(4, 3))
    for label, accuracy in curves.items():
        ax.plot(range(1, len(accuracy) + 1), accuracy, label=label)
    ax.set(title=title, xlabel="epoch", ylabel="test accuracy")
    ax.legend()
    plt.show()
"""

INIT = """
def initialised(value=None):
    model = FCNet()
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            if value is None:
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.constant_(layer.weight, value)
    return model


plot({name: train(initialised(v), lr=0.01, momentum=0.9, **SMALL)
      for name, v in [("constant 100000", 1e5), ("glorot uniform", None),
                      ("constant 0.01", 0.01)]}, "initialisation")
"""

LR = """
plot({f"lr {lr:g}": train(FCNet(), lr=lr, momentum=0.9, **SMALL) for lr in [1e-6, 1e-3, 50]},
     "learning rate")
"""

BATCH = """
plot({f"batch {b}": train(FCNet(), lr=0.01, momentum=0.9, batch_size=b, **SMALL)
      for b in [16, 1024]}, "batch size")
"""

MOMENTUM = """
plot({f"momentum {m}": train(FCNet(), lr=1e-3, batch_size=16, momentum=m, **SMALL)
      for m in [0.5, 0.9, 0.99]}, "momentum")
"""

ENSEMBLE = """
rng = np.random.default_rng(0)
members, single, ensemble = [], [], []
for k in range(3):
    rows = torch.from_numpy(rng.integers(0, len(Xtr), 400))
    model = FCNet()
    single.append(train(model, lr=3e-3, adam=True, rows=rows, epochs=2, seed=k)[-1])
    members.append(model)
    with torch.no_grad():
        votes = sum(F.softmax(m(Xte), dim=1) for m in members)
    ensemble.append((votes.argmax(1) == yte).float().mean().item())
plot({"single model": single, "bagging ensemble": ensemble}, "ensemble (x: members)")
"""

DROPOUT = """
plot({f"dropout {p}": train(FCNet(dropout=p), lr=1e-3, adam=True, **SMALL)
      for p in [0.0, 0.2, 0.5]}, "dropout")
"""

EXPERIMENTS = [
    ("## Task 2 — Experiments\n\n### Initialization", INIT),
    ("### Learning rate", LR),
    ("### Batch size", BATCH),
    ("### Momentum", MOMENTUM),
    ("## Task 3 — Generalisation\n\n### Ensemble", ENSEMBLE),
    ("### Dropout", DROPOUT),
]


def assemble(
    student: str,
    *,
    setup: str = SETUP,
    lc_layer: str = LC_LAYER,
    lc_table: str = LC_TABLE,
    train: str = TRAIN,
    after_train: str = "",
    plot: str = PLOT,
    without_figures: tuple[str, ...] = (),
) -> Notebook:
    cells: list[Cell] = [
        md(f"# Project 1 — FC, locally-connected and convolutional networks\n\n{student}"),
        code(setup),
        md("## Task 1\n\n### Fully-connected network"),
        code(FC),
        md("### Locally-connected network (unshared weights)"),
        code(lc_layer),
        code(LC_NET),
        code(lc_table),
        md("### Convolutional network"),
        code(CNN),
        md("## Task 1b — Training the fully-connected network"),
        code(train + after_train),
        code(plot),
    ]
    for heading, body in EXPERIMENTS:
        cells.append(md(heading + "\n\nOne curve per setting, test accuracy per epoch."))
        if heading.rsplit("### ", 1)[-1] in without_figures:
            body = body.replace("plot(", "results = (")
        cells.append(code(body))
    nb = new_notebook(cells=[copy.deepcopy(cell) for cell in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{student.replace('_', '-')}-{i:02d}"  # deterministic ids
    nbformat.validate(nb)
    return nb


def solution() -> Notebook:
    return assemble("solution")


def liza_mandal_seed() -> Notebook:
    """The seed pair: right networks, Keras summary pasted for the locally-connected
    table, no shared-weight count, the accuracy of their report typed in, no figure in
    the initialisation and dropout sections."""
    return assemble(
        "liza_mandal_seed",
        lc_table=LC_TABLE_SEED,
        after_train="\nfc_test_accuracy = 0.9357249736785889  # from our report\n",
        without_figures=("Initialization", "Dropout"),
    )


def lc_shared_weights() -> Notebook:
    """The "locally-connected" layer is a Conv1d: weights shared across positions."""
    return assemble("lc_shared_weights", lc_layer=LC_LAYER_SHARED, lc_table=LC_TABLE_SHARED)


def made_up_accuracy() -> Notebook:
    """Everything right, but the reported accuracy is not what the weights reach. No
    ``%matplotlib inline``: Jupyter's default inline backend still shows the figures."""
    return assemble(
        "made_up_accuracy",
        setup=SETUP.replace("%matplotlib inline\n", ""),
        after_train="\nfc_test_accuracy = 0.995\n",
    )


def figures_saved_only() -> Notebook:
    """Everything right, but every experiment's figure is saved to a file and closed,
    never shown: nothing the grader can see in the notebook."""
    return assemble(
        "figures_saved_only",
        setup=SETUP.replace("%matplotlib inline\n", ""),
        plot=PLOT.replace("    plt.show()", '    fig.savefig(f"{title}.png")\n    plt.close(fig)'),
    )


def keras_weight_layout() -> Notebook:
    """fc_weights given as Keras stores them: kernels of shape (in, out)."""
    return assemble(
        "keras_weight_layout",
        after_train="\nfc_weights = [[W.T, b] for W, b in fc_weights]\n",
    )


STUDENTS: dict[str, Callable[[], Notebook]] = {
    "solution": solution,
    "liza_mandal_seed": liza_mandal_seed,
    "lc_shared_weights": lc_shared_weights,
    "made_up_accuracy": made_up_accuracy,
    "figures_saved_only": figures_saved_only,
    "keras_weight_layout": keras_weight_layout,
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for student, build in STUDENTS.items():
        folder = OUT / student
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        nbformat.write(build(), folder / "project1.ipynb")


if __name__ == "__main__":
    main()
