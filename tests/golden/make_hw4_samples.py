# mypy: disable-error-code="no-untyped-call"
"""Generate the HW4 sample submissions under ``submissions/hw4/``.

Run from anywhere: ``python tests/golden/make_hw4_samples.py``. Each student is a folder
with ``hw4.py`` (``batchnorm_forward`` and ``gradcam``) and ``hw4.ipynb`` (a real Jupyter
notebook, nbformat v4, deterministic cell ids, no outputs). The solution's notebook runs
its search (four trainings of the handout's trainer, about a second); the other students'
notebooks hold the results of their runs as literals (the figures the handout's trainer
gives with seed 0, rounded to 4 decimals, or a made-up one where that is the mistake).
The expected grades are written by hand in ``tests/golden/hw4/<student>.yaml``.

Only the folders of the students listed in :data:`STUDENTS` are replaced; anything else
under ``submissions/hw4/`` is left alone.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "submissions" / "hw4"

Cell = Any  # nbformat.NotebookNode (nbformat is untyped)
Notebook = Any


def md(text: str) -> Cell:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> Cell:
    return new_code_cell(text.strip("\n"))


# --------------------------------------------------------------------------------------
# hw4.py
# --------------------------------------------------------------------------------------

HEADER = '''"""HW4: batch normalisation (forward) and Grad-CAM."""

import numpy as np
import torch
'''

BATCHNORM = '''

def batchnorm_forward(x, gamma, beta, running_mean, running_var, training,
                      momentum=0.1, eps=1e-5):
    """(out, new_running_mean, new_running_var) as torch.nn.functional.batch_norm."""
    x = np.asarray(x, dtype=np.float64)
    if not training:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        return out, np.array(running_mean), np.array(running_var)
    n = x.shape[0]
    mu = x.mean(axis=0)
    var = x.var(axis=0)  # biased: what the normalisation uses
    out = gamma * (x - mu) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mu
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)  # unbiased
    return out, new_mean, new_var
'''

# The unbiased variance in the normalisation itself (np.var(ddof=1)).
BATCHNORM_UNBIASED = '''

def batchnorm_forward(x, gamma, beta, running_mean, running_var, training,
                      momentum=0.1, eps=1e-5):
    """Batch normalisation with the sample variance."""
    x = np.asarray(x, dtype=np.float64)
    if not training:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        return out, np.array(running_mean), np.array(running_var)
    mu = x.mean(axis=0)
    var = x.var(axis=0, ddof=1)
    out = gamma * (x - mu) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mu
    new_var = (1 - momentum) * running_var + momentum * var
    return out, new_mean, new_var
'''

GRADCAM = '''

def gradcam(model, x, target_class, layer_name):
    """ReLU of the gradient-weighted sum of the named layer's channels."""
    layer = dict(model.named_modules())[layer_name]
    saved = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: saved.update(a=output))
    try:
        scores = model(torch.as_tensor(x))
    finally:
        handle.remove()
    activation = saved["a"]
    (grads,) = torch.autograd.grad(scores[0, target_class], activation)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * activation).sum(dim=1))[0]
    return cam.detach().numpy()
'''

# Grad-CAM without the final ReLU: negative evidence stays in the map.
GRADCAM_NO_RELU = '''

def gradcam(model, x, target_class, layer_name):
    """Gradient-weighted sum of the named layer's channels."""
    layer = dict(model.named_modules())[layer_name]
    saved = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: saved.update(a=output))
    try:
        scores = model(torch.as_tensor(x))
    finally:
        handle.remove()
    activation = saved["a"]
    (grads,) = torch.autograd.grad(scores[0, target_class], activation)
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return (alpha * activation).sum(dim=1)[0].detach().numpy()
'''


# --------------------------------------------------------------------------------------
# hw4.ipynb
# --------------------------------------------------------------------------------------

IMPORTS = """
import numpy as np
"""

# The solution runs its search with the handout's trainer.
SEARCH_RUN = """
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)


def train_mlp(hidden_units, learning_rate, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden_units), torch.nn.ReLU(), torch.nn.Linear(hidden_units, 10)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    xt = torch.tensor(X_train, dtype=torch.float32)
    yt = torch.tensor(y_train, dtype=torch.long)
    for _ in range(25):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        predicted = model(torch.tensor(X_val, dtype=torch.float32)).argmax(dim=1).numpy()
    return float(np.mean(predicted == y_val))


configs = [(32, 0.01), (64, 0.01), (64, 0.02), (128, 0.02)]
q1_trials = [
    {"hidden_units": h, "learning_rate": lr, "val_accuracy": train_mlp(h, lr)}
    for h, lr in configs
]
q1_best = max(q1_trials, key=lambda t: t["val_accuracy"])
print(q1_trials, q1_best)
"""


def trials_literal(trials: list[tuple[int, float, float]], best: int) -> str:
    rows = ",\n".join(
        f'    {{"hidden_units": {h}, "learning_rate": {lr}, "val_accuracy": {acc}}}'
        for h, lr, acc in trials
    )
    return (
        "# the results of my search (random search, 4 trials)\n"
        f"q1_trials = [\n{rows},\n]\nq1_best = q1_trials[{best}]"
    )


# What the handout's trainer gives with seed 0 (x / 450 validation rows, 4 decimals):
# (32, 0.01) 0.9022, (32, 0.02) 0.9356, (64, 0.01) 0.9378, (64, 0.02) 0.9667,
# (128, 0.01) 0.9467, (128, 0.02) 0.9556.
HONEST = trials_literal(
    [(32, 0.02, 0.9356), (64, 0.02, 0.9667), (128, 0.01, 0.9467), (128, 0.02, 0.9556)], 1
)

Q3 = "q3_input_shape = (1, 5)  # (timesteps, features): one step of 5 features per sample"

Q5_TABLE = """
q5_table = [
    ["Input", (256, 256, 3), 0],
    ["Conv2D", (256, 256, 64), 3 * 3 * 3 * 64 + 64],
    ["Conv2D", (126, 126, 32), 5 * 5 * 64 * 32 + 32],
    ["MaxPool2D", (63, 63, 32), 0],
    ["Conv2D", (63, 63, 128), 3 * 3 * 32 * 128 + 128],
    ["Conv2D", (20, 20, 64), 5 * 5 * 128 * 64 + 64],
    ["MaxPool2D", (10, 10, 64), 0],
    ["Conv2D", (6, 6, 256), 3 * 3 * 64 * 256 + 256],
    ["Conv2D", "invalid", 5 * 5 * 256 * 256 + 256],
    ["MaxPool2D", "invalid", 0],
]
q5_same_padding = 4  # (k - 1) * d / 2
"""

# Seed 000's table: the count of ONE filter (k*k*depth + 1, never times the filters) and
# 124x124 for layer 2, carried through layers 3 and 4.
Q5_TABLE_SEED = """
q5_table = [
    ["Input", "256*256*3", 0],
    ["Conv2D", "256*256*64", 3 * 3 * 3 + 1],
    ["Conv2D", "124*124*32", 5 * 5 * 64 + 1],
    ["MaxPool2D", "62*62*32", 0],
    ["Conv2D", "62*62*128", 3 * 3 * 32 + 1],
    ["Conv2D", "20*20*64", 5 * 5 * 128 + 1],
    ["MaxPool2D", "10*10*64", 0],
    ["Conv2D", "6*6*256", 3 * 3 * 64 + 1],
    ["Conv2D", "invalid", 5 * 5 * 256 + 1],
    ["MaxPool2D", "invalid", 0],
]
# Padding = ((n - 1) * stride - n + k + (k - 1) * (dilation - 1)) / 2 with stride 1
q5_same_padding = (5 + (5 - 1) * (2 - 1) - 1) // 2
"""

Q6 = """
q6_true_false = [False, True, False, True]
q6_params_without_bn = 10 * 20 + 20
q6_params_with_bn = 10 * 20 + 20 + 2 * 20
"""

# The true/false answers as a NumPy bool mask, the LSTM shape read off a batch-first tensor
# (a torch.Size), the counts NumPy integers.
Q3_TORCH_SIZE = """
import torch
x = torch.zeros(32, 1, 5)  # (batch, timesteps, features) for nn.LSTM(batch_first=True)
q3_input_shape = x.shape[1:]
"""

Q6_NUMPY = """
q6_true_false = np.array(["F", "T", "F", "T"]) == "T"
q6_params_without_bn = np.prod((10, 20)) + 20
q6_params_with_bn = q6_params_without_bn + 2 * 20
print(q6_true_false, type(q6_true_false), q6_params_without_bn, q6_params_with_bn)
"""


@dataclass(frozen=True)
class Student:
    name: str
    batchnorm: str = BATCHNORM
    gradcam: str = GRADCAM
    search: str = HONEST
    q3: str = Q3
    q5: str = Q5_TABLE
    q6: str = Q6

    @property
    def module(self) -> str:
        return (HEADER + self.batchnorm + self.gradcam).rstrip() + "\n"


def notebook(student: Student) -> Notebook:
    cells = [
        md(f"# HW4 — Search, shapes, batch normalisation, Grad-CAM\n\nStudent: {student.name}"),
        code(IMPORTS),
        md("## Q1 — Hyper-parameter search"),
        code(student.search),
        md("## Q3 — LSTM input"),
        code(student.q3),
        md("## Q5 — Shape table"),
        code(student.q5),
        md("## Q6 — Batch normalisation"),
        code(student.q6),
        md(
            "## Q7 — Grad-CAM\n\nThe heat map shows where the last convolutional layer "
            "looks for each class."
        ),
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


SOLUTION = Student("solution", search=SEARCH_RUN)

STUDENTS = [
    SOLUTION,
    # Seed 000 (Baktash Ansari): the shape table's mistakes; everything else as the seed
    # answered it (true/false F, T, F and the dropout claim T; 220 / 260; (1, features)).
    replace(SOLUTION, name="ansari_seed", search=HONEST, q5=Q5_TABLE_SEED),
    # "best" is the last (largest) model, not the trial with the highest accuracy.
    replace(
        SOLUTION,
        name="tuner_best_not_argmax",
        search=trials_literal(
            [(32, 0.01, 0.9022), (64, 0.01, 0.9378), (64, 0.02, 0.9667), (128, 0.02, 0.9556)],
            3,
        ),
    ),
    # (32, 0.01) reaches about 0.90; the student reports 0.9522, 5 points above.
    replace(
        SOLUTION,
        name="inflated_claim",
        search=trials_literal(
            [(32, 0.01, 0.9522), (32, 0.02, 0.9356), (64, 0.01, 0.9378), (128, 0.01, 0.9467)],
            0,
        ),
    ),
    # Five trials, one of them with 256 hidden units (outside the space).
    replace(
        SOLUTION,
        name="search_outside_space",
        search=trials_literal(
            [
                (32, 0.02, 0.9356),
                (64, 0.02, 0.9667),
                (128, 0.01, 0.9467),
                (128, 0.02, 0.9556),
                (256, 0.02, 0.96),
            ],
            1,
        ),
    ),
    replace(SOLUTION, name="bn_unbiased_variance", search=HONEST, batchnorm=BATCHNORM_UNBIASED),
    replace(SOLUTION, name="gradcam_no_relu", search=HONEST, gradcam=GRADCAM_NO_RELU),
    # The seed's original LSTM code (X_train.shape[1], 1), and all four statements False:
    # "the initialiser does not matter with BN", "dropout does not slow convergence".
    replace(
        SOLUTION,
        name="misconceptions",
        search=HONEST,
        q3="q3_input_shape = (5, 1)  # input_shape = (X_train.shape[1], 1)",
        q6=Q6.replace("[False, True, False, True]", '["false", "false", "false", "false"]'),
    ),
    # Everything right, in NumPy and torch forms: the true/false answers a NumPy bool array.
    replace(SOLUTION, name="numpy_answer_types", search=HONEST, q3=Q3_TORCH_SIZE, q6=Q6_NUMPY),
    # The true/false answers as a 0/1 int array; statement 3 answered 1 (true).
    replace(
        SOLUTION,
        name="true_false_ones_zeros",
        search=HONEST,
        q6=Q6.replace("[False, True, False, True]", "np.array([0, 1, 1, 1])"),
    ),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for student in STUDENTS:
        folder = OUT / student.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / "hw4.py").write_text(student.module, encoding="utf-8")
        nbformat.write(notebook(student), folder / "hw4.ipynb")


if __name__ == "__main__":
    main()
