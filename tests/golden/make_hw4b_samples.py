# mypy: disable-error-code="no-untyped-call"
"""Generate the HW4-B sample submissions under ``submissions/hw4b/``.

Run from anywhere: ``python tests/golden/make_hw4b_samples.py``. Each student is a folder
with ``hw4b.ipynb`` (a real Jupyter notebook, nbformat v4, deterministic cell ids, no
outputs) holding the handout's given code (the course CNN and its trainer). The
solution's notebook trains the six configurations itself with seed 0 (a few seconds);
the other students' notebooks hold the results of their runs as literals (the figures
the handout's trainer gives with seed 0, rounded to 4 decimals, or a made-up one where
that is the mistake), so that grading the batch stays fast. The expected grades are
written by hand in ``tests/golden/hw4b/<student>.yaml``.

Only the folders of the students listed in :data:`STUDENTS` are replaced; anything else
under ``submissions/hw4b/`` is left alone.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "submissions" / "hw4b"

Cell = Any  # nbformat.NotebookNode (nbformat is untyped)
Notebook = Any


def md(text: str) -> Cell:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> Cell:
    return new_code_cell(text.strip("\n"))


# The handout's given code, copied unchanged (rubrics/hw4b.md).
GIVEN = '''
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

torch.set_num_threads(1)  # tiny tensors: one thread is as fast, and reproducible

X, y = load_digits(return_X_y=True)
images = (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(images, y, test_size=0.25, random_state=0)


def course_cnn(activation="relu", batch_norm=False, filters=(8, 16, 16)):
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
    f1, f2, f3 = filters
    layers = []

    def conv(i, n_in, n_out):
        layers.append((f"conv{i}", nn.Conv2d(n_in, n_out, 3, padding=1)))
        if batch_norm:
            layers.append((f"bn{i}", nn.BatchNorm2d(n_out)))
        layers.append((f"act{i}", act()))

    conv(1, 1, f1)
    conv(2, f1, f2)
    layers += [("pool1", nn.MaxPool2d(2)), ("drop1", nn.Dropout(0.25))]
    conv(3, f2, f3)
    layers += [
        ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(f3 * 2 * 2, 64)),
        ("act4", act()),
        ("drop2", nn.Dropout(0.5)),
        ("fc2", nn.Linear(64, 10)),
    ]
    return nn.Sequential(OrderedDict(layers))


def train_cnn(activation="relu", epochs=3, batch_size=128, batch_norm=False,
              filters=(8, 16, 16), seed=0):
    """Returns (test loss, test accuracy)."""
    torch.manual_seed(seed)
    model = course_cnn(activation, batch_norm, filters)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    xt, yt = torch.from_numpy(X_train), torch.from_numpy(y_train)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), batch_size):
            rows = order[start:start + batch_size]
            optimiser.zero_grad()
            loss = F.cross_entropy(model(xt[rows]), yt[rows])
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(X_test))
        target = torch.from_numpy(y_test)
        test_loss = float(F.cross_entropy(logits, target))
        test_accuracy = float((logits.argmax(dim=1) == target).float().mean())
    return test_loss, test_accuracy
'''

# What the handout's trainer gives with seed 0 (test loss, test accuracy), 4 decimals:
# baseline (0.6902, 0.7756), sigmoid (2.3092, 0.0822), epochs_6 (0.2285, 0.9222),
# batch_256 (1.3080, 0.6133), batchnorm (0.3956, 0.9133), fewer_filters (1.1038, 0.6600).
HONEST: dict[str, tuple[float, float]] = {
    "q1_baseline": (0.6902, 0.7756),
    "q1_sigmoid": (2.3092, 0.0822),
    "q2_epochs_6": (0.2285, 0.9222),
    "q3_batch_256": (1.3080, 0.6133),
    "q4_batchnorm": (0.3956, 0.9133),
    "q6_fewer_filters": (1.1038, 0.6600),
}

CALLS = {
    "q1_baseline": "train_cnn()",
    "q1_sigmoid": 'train_cnn(activation="sigmoid")',
    "q2_epochs_6": "train_cnn(epochs=6)",
    "q3_batch_256": "train_cnn(batch_size=256)",
    "q4_batchnorm": "train_cnn(batch_norm=True)",
    "q6_fewer_filters": "train_cnn(filters=(4, 8, 8))",
}


def run(*names: str, calls: dict[str, str] = CALLS) -> str:
    """Cells that train the configurations, as the solution does."""
    return "\n".join(
        f"{n}_loss, {n}_accuracy = {calls[n]}\n"
        f"print('test loss, test acc:', [{n}_loss, {n}_accuracy])"
        for n in names
    )


def literal(*names: str, figures: dict[str, tuple[float, float]] = HONEST) -> str:
    """Cells that hold the figures of earlier runs (as copied from the printed output)."""
    return "\n".join(
        f"{n}_loss, {n}_accuracy = {figures[n][0]}, {figures[n][1]}  # test loss, test acc"
        for n in names
    )


Q1B = """
### Q1b
ReLU is cheap to compute (a comparison with zero), and its gradient is 1 for every
positive input, so deep networks keep learning. Its weakness is that negative inputs get
a zero gradient: a unit whose input stays negative stops learning (dying ReLU). The
sigmoid saturates for large positive or negative inputs, where its gradient vanishes,
and its outputs are not zero-centred (always between 0 and 1), which slows the updates
of the next layer. In our runs the sigmoid network has not started learning after three
epochs: its test loss stays near ln 10 = 2.30 and its accuracy near chance (about 0.1),
while the ReLU network already reaches about 0.78.
"""

Q4B = """
### Q4b
Batch normalisation normalises each channel with the mean and variance of the current
mini-batch during training, then applies a learned scale and shift (gamma and beta). It
reduces the internal covariate shift, the change in the distribution of each layer's
inputs while the earlier layers learn, so higher learning rates can be used and the
network trains faster. With batch normalisation our CNN reaches a better test accuracy
after the same three epochs than the baseline without it.
"""

# The seed's own prose (Task 2 and Task 4 on batch normalisation), lightly trimmed.
Q1B_SEED = """
### Q1b
The model can affect the efficiency of computer computation as well as the inference
results. For example: RELU is very efficient and fast in calculations, but when the input
values are approximately zero or negative, it is impossible to calculate backpropagation,
which means there is no training. At the same time, the leaky RELU allows training
through backpropagation, but the prediction with negative input data is imprecise.

Other more accurate models of activation functions are sigmoid and hyperbolic tangent.
They give smooth gradients and accurate predictions (the hyperbolic tangent is also
centered around zero, making it easier to compute for inputs that are very negative, very
positive, or neutral in value). However, these features also have their drawbacks. Such
models are computationally heavy, and at their boundaries lead to gradient vanishing,
because at these ends the gradient change is almost zero.

In our case, we expect to get slightly more accurate results for the sigmoid model.
"""

Q4B_SEED = """
### Q4b
Batch normalization is normalizing the mean and variance of each feature at every level
of representation during training. It enables to accelerate the learning process due to
using higher learning rates and helps with training of very deep networks.

We expected to get better results, but the results we get are worse sometimes than
without normalization. It could be because our data is not very good.
"""

Q5 = """
q5_layers = 5  # conv1, conv2, conv3, fc1, fc2
q5_conv_layers = 3
q5_dense_layers = 2
q5_filters = [8, 16, 16]
q5_params = sum(p.numel() for p in course_cnn().parameters() if p.requires_grad)
# a dense layer from the 8*8*1 input values to conv1's 8*8*8 outputs, with bias
q5_dense_equivalent_params = 8 * 8 * 1 * (8 * 8 * 8) + 8 * 8 * 8
q5_regularisers = [True, True, False, False, False]  # dropout, weight_decay in Adam
print(q5_params, q5_dense_equivalent_params)
"""

Q6_PARAMS = """
q6_params = sum(p.numel() for p in course_cnn(filters=(4, 8, 8)).parameters())
"""

# Weights only, by hand: (k*k*C_in)*C_out per convolution, n_in*n_out per dense layer.
Q5_NO_BIAS = """
q5_layers = 5
q5_conv_layers = 3
q5_dense_layers = 2
q5_filters = [8, 16, 16]
# conv: filter height * filter width * filters of the previous layer * filters
q5_params = 3 * 3 * 1 * 8 + 3 * 3 * 8 * 16 + 3 * 3 * 16 * 16 + 64 * 64 + 64 * 10
q5_dense_equivalent_params = 64 * 512
q5_regularisers = [True, True, False, False, False]
"""

Q6_NO_BIAS = """
q6_params = 3 * 3 * 1 * 4 + 3 * 3 * 4 * 8 + 3 * 3 * 8 * 8 + 32 * 64 + 64 * 10
"""

# Every entry of the Sequential up to the last dense layer but the activations and
# dropouts: conv1, conv2, pool1, conv3, pool2, flatten, fc1, fc2; the weight decay sits
# in the optimiser, not in the model, and is missed.
Q5_COUNTED_POOLING = """
q5_layers = 8  # conv1, conv2, pool1, conv3, pool2, flatten, fc1, fc2
q5_conv_layers = 3
q5_dense_layers = 2
q5_filters = [8, 16, 16]
q5_params = sum(p.numel() for p in course_cnn().parameters())
q5_dense_equivalent_params = 64 * 512 + 512
q5_regularisers = [True, False, False, False, False]  # only nn.Dropout in the model
"""


@dataclass(frozen=True)
class Student:
    name: str
    q1: str = literal("q1_baseline", "q1_sigmoid")
    q1b: str = Q1B
    q2: str = literal("q2_epochs_6")
    q3: str = literal("q3_batch_256")
    q4: str = literal("q4_batchnorm")
    q4b: str = Q4B
    q5: str = Q5
    q6: str = literal("q6_fewer_filters") + "\n" + Q6_PARAMS.strip()


def notebook(student: Student) -> Notebook:
    cells = [
        md(f"# HW4-B — Training the course CNN\n\nStudent: {student.name}"),
        md("## The course CNN (given)"),
        code(GIVEN),
        md("## Q1 — Activation functions"),
        code(student.q1),
        md(student.q1b),
        md("## Q2 — Epochs"),
        code(student.q2),
        md("## Q3 — Mini-batch size"),
        code(student.q3),
        md("## Q4 — Batch normalisation"),
        code(student.q4),
        md(student.q4b),
        md("## Q5 — Counting the course CNN"),
        code(student.q5),
        md("## Q6 — Fewer filters"),
        code(student.q6),
    ]
    nb = new_notebook(cells=[copy.deepcopy(cell) for cell in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{student.name.replace('_', '-')}-{i:02d}"  # deterministic ids
    nbformat.validate(nb)
    return nb


# The solution trains every configuration itself (seed 0).
SOLUTION = Student(
    "solution",
    q1=run("q1_baseline", "q1_sigmoid"),
    q2=run("q2_epochs_6"),
    q3=run("q3_batch_256"),
    q4=run("q4_batchnorm"),
    q6=run("q6_fewer_filters") + "\n" + Q6_PARAMS.strip(),
)

# Keras' evaluate prints [loss, acc]; these students unpacked it as (acc, loss).
SWAPPED = {name: (acc, loss) for name, (loss, acc) in HONEST.items()}

STUDENTS = [
    SOLUTION,
    # The seed's formula without the "+ bias" term: weights only, in all three counts.
    Student("forgot_biases", q5=Q5_NO_BIAS, q6=literal("q6_fewer_filters") + Q6_NO_BIAS),
    # Counts pooling and flatten as layers, and misses the weight decay (it is set on the
    # optimiser, not in the model).
    Student("counted_pooling", q5=Q5_COUNTED_POOLING),
    # The seed's prose and its expectations written as results: the sigmoid "should" be
    # more accurate, and more epochs "should" give an almost perfect score.
    Student(
        "made_up_accuracy",
        q1=literal(
            "q1_baseline",
            "q1_sigmoid",
            figures={**HONEST, "q1_sigmoid": (2.3092, 0.85)},
        ),
        q2=literal("q2_epochs_6", figures={**HONEST, "q2_epochs_6": (0.2285, 0.9978)}),
        q1b=Q1B_SEED,
        q4b=Q4B_SEED,
    ),
    # Every pair unpacked the wrong way round.
    Student(
        "swapped_loss_accuracy",
        q1=literal("q1_baseline", "q1_sigmoid", figures=SWAPPED),
        q2=literal("q2_epochs_6", figures=SWAPPED),
        q3=literal("q3_batch_256", figures=SWAPPED),
        q4=literal("q4_batchnorm", figures=SWAPPED),
        q6=literal("q6_fewer_filters", figures=SWAPPED) + "\n" + Q6_PARAMS.strip(),
    ),
    # The batch-norm cell raises (a keyword the trainer does not have); the later cells
    # still run, so only Q4's two figures are lost.
    Student(
        "notebook_error",
        q4=run("q4_batchnorm", calls={"q4_batchnorm": "train_cnn(batchnorm=True)"}),
    ),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for student in STUDENTS:
        folder = OUT / student.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        nbformat.write(notebook(student), folder / "hw4b.ipynb")


if __name__ == "__main__":
    main()
