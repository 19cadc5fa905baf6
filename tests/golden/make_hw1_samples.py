# mypy: disable-error-code="no-untyped-call"
"""Generate the HW1 sample submissions under ``submissions/hw1/``.

Run from anywhere: ``python tests/golden/make_hw1_samples.py``. Each student is a folder
with ``hw1.py`` (the five functions) and ``hw1.ipynb`` (a real Jupyter notebook, nbformat
v4, deterministic cell ids, no outputs) that trains the two-layer network on digits with
NumPy (one with PyTorch) in about a second. The expected grades are written by hand in
``tests/golden/hw1/<student>.yaml``.

Only the folders of the students listed in :data:`STUDENTS` are replaced; anything else
under ``submissions/hw1/`` is left alone.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "submissions" / "hw1"

Cell = Any  # nbformat.NotebookNode (nbformat is untyped)
Notebook = Any


def md(text: str) -> Cell:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> Cell:
    return new_code_cell(text.strip("\n"))


# --------------------------------------------------------------------------------------
# hw1.py: the five functions, correct, then the seed's mistakes one at a time
# --------------------------------------------------------------------------------------

HEADER = '''"""HW1: a two-layer network from low-level operations (NumPy)."""

import numpy as np
'''

FORWARD_PASS = '''

def forward_pass(variables, x):
    """Softmax probabilities of relu(x @ W1 + b1) @ W2 + b2, one row per example."""
    h1 = np.maximum(x @ variables["layer_1_weights"] + variables["layer_1_bias"], 0)
    z = h1 @ variables["layer_2_weights"] + variables["layer_2_bias"]
    z = z - z.max(axis=1, keepdims=True)  # exp never overflows
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
'''

CROSS_ENTROPY = '''

def cross_entropy(Y, predictedY):
    """Per-example loss -sum(Y * log(predictedY))."""
    return -np.sum(Y * np.log(predictedY), axis=1)
'''

CALCULATE_ACCURACY = '''

def calculate_accuracy(y, predicted_y):
    """Fraction of rows whose arg-max class matches."""
    return float(np.mean(np.argmax(y, axis=1) == np.argmax(predicted_y, axis=1)))
'''

DROPOUT = '''

def dropout(p, h1):
    """Inverted dropout: drop with probability p, scale the survivors by 1/(1-p)."""
    if p == 0:
        return h1.copy()
    keep = np.random.rand(*h1.shape) >= p
    return h1 * keep / (1 - p)
'''

MEAN_ABSOLUTE_ERROR = '''

def mean_absolute_error(y, predicted_y):
    """Per-row mean of |predicted_y - y|."""
    return np.mean(np.abs(predicted_y - y), axis=1)
'''

# softmax without max-subtraction: exp(1000) = inf, inf / inf = NaN on large logits
FORWARD_PASS_NAIVE = """

def forward_pass(variables, x):
    h1 = np.maximum(x @ variables["layer_1_weights"] + variables["layer_1_bias"], 0)
    z = h1 @ variables["layer_2_weights"] + variables["layer_2_bias"]
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
"""

# accuracy by element-wise rounding of the probabilities (the seed's tf.round)
CALCULATE_ACCURACY_ROUNDING = """

def calculate_accuracy(y, predicted_y):
    # round the predictions to either 1 or 0 and compare with the one-hot labels
    predictions = np.round(predicted_y)
    return float(np.mean(predictions == y))
"""

# survivors divided by p instead of 1 - p (the seed's h1 = h1 / p)
DROPOUT_ONE_OVER_P = """

def dropout(p, h1):
    keep = np.random.rand(*h1.shape) < 1 - p
    return h1 * keep / p
"""

# np.random.binomial(1, p) is 1 with probability p: that mask KEEPS with probability p
DROPOUT_BINOMIAL_MASK = """

def dropout(p, h1):
    mask = np.random.binomial(1, p, size=h1.shape)
    return h1 * mask / (1 - p)
"""

# seed 004's own code, translated from TensorFlow to NumPy line by line
GUPTA_MODULE = '''"""Assignment 01 Deep Learning (seed 004), TensorFlow translated to NumPy."""

import numpy as np


def softmax(z):
    return np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)


def forward_pass(variables, x):
    # forward propagation step
    layer_1_Z = np.matmul(x, variables["layer_1_weights"]) + variables["layer_1_bias"]
    layer_1_activation = np.maximum(layer_1_Z, 0)  # Activation of layer 1
    layer_2_Z = np.matmul(layer_1_activation, variables["layer_2_weights"]) + variables[
        "layer_2_bias"]  # layer 2 z calculation
    predictedY = softmax(layer_2_Z)
    return predictedY


def cross_entropy(Y, predictedY):
    loss = -np.sum(Y * np.log(predictedY), axis=1)
    return loss


def calculate_accuracy(y, predicted_y):
    # round the predictions by the logistical unit to either 1 or 0
    predictions = np.round(predicted_y)
    # True if prediction correct, False otherwise, cast to numbers
    predictions_correct = np.equal(predictions, y).astype(np.float32)
    # Finally, we just determine the mean value of predictions_correct
    accuracy = np.mean(predictions_correct)
    return accuracy


def dropout(p, h1):
    probthreshold = 1 - p
    u1 = np.random.rand(h1.shape[0], h1.shape[1]) < probthreshold
    h1 *= u1
    h1 = h1 / p
    return h1


def mean_absolute_error(y, predicted_y):
    return np.mean(np.abs(predicted_y - y), axis=-1)
'''

# the experiment left at the bottom of the module: it runs on every import
TRAIN_AT_IMPORT = """

# ---- my experiment ----
from sklearn.datasets import load_digits

X, y = load_digits(return_X_y=True)
X = X / 16.0
Y = np.eye(10)[y]
rng = np.random.default_rng(0)
variables = {
    "layer_1_weights": rng.normal(0, 0.1, (64, 100)),
    "layer_1_bias": np.zeros(100),
    "layer_2_weights": rng.normal(0, 0.1, (100, 10)),
    "layer_2_bias": np.zeros(10),
}
for epoch in range(200000):  # full-batch gradient descent, "until it converges"
    z1 = X @ variables["layer_1_weights"] + variables["layer_1_bias"]
    h1 = np.maximum(z1, 0)
    dz2 = (forward_pass(variables, X) - Y) / len(X)
    dh1 = dz2 @ variables["layer_2_weights"].T * (z1 > 0)
    variables["layer_2_weights"] -= 0.1 * h1.T @ dz2
    variables["layer_2_bias"] -= 0.1 * dz2.sum(axis=0)
    variables["layer_1_weights"] -= 0.1 * X.T @ dh1
    variables["layer_1_bias"] -= 0.1 * dh1.sum(axis=0)
print("accuracy", calculate_accuracy(Y, forward_pass(variables, X)))
"""


def module(
    forward: str = FORWARD_PASS,
    accuracy: str = CALCULATE_ACCURACY,
    drop: str = DROPOUT,
    tail: str = "",
) -> str:
    return (
        HEADER + forward + CROSS_ENTROPY + accuracy + drop + MEAN_ABSOLUTE_ERROR + tail
    ).rstrip() + "\n"


# --------------------------------------------------------------------------------------
# hw1.ipynb
# --------------------------------------------------------------------------------------

IMPORTS = """
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from hw1 import calculate_accuracy, cross_entropy, forward_pass
"""

DATA = """
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
Y_train, Y_test = np.eye(10)[y_train], np.eye(10)[y_test]
X_train.shape, X_test.shape
"""

TRAINING = """
rng = np.random.default_rng(0)
D, H, C = 64, 100, 10
variables = {
    "layer_1_weights": rng.normal(0, np.sqrt(2 / D), (D, H)),
    "layer_1_bias": np.zeros(H),
    "layer_2_weights": rng.normal(0, np.sqrt(1 / H), (H, C)),
    "layer_2_bias": np.zeros(C),
}
learning_rate, batch_size = 0.1, 32
for epoch in range(30):
    order = rng.permutation(len(X_train))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        x, Y = X_train[batch], Y_train[batch]
        z1 = x @ variables["layer_1_weights"] + variables["layer_1_bias"]
        h1 = np.maximum(z1, 0)
        predictedY = forward_pass(variables, x)
        dz2 = (predictedY - Y) / len(batch)  # gradient of the mean cross-entropy
        dh1 = dz2 @ variables["layer_2_weights"].T * (z1 > 0)
        grads = {
            "layer_1_weights": x.T @ dh1,
            "layer_1_bias": dh1.sum(axis=0),
            "layer_2_weights": h1.T @ dz2,
            "layer_2_bias": dz2.sum(axis=0),
        }
        for key in variables:
            variables[key] = variables[key] - learning_rate * grads[key]
    if epoch % 10 == 9:
        loss = cross_entropy(Y_train, forward_pass(variables, X_train)).mean()
        print(f"epoch {epoch + 1}: training loss {loss:.4f}")
trained_variables = variables
"""

EVALUATION = """
test_accuracy = float(calculate_accuracy(Y_test, forward_pass(trained_variables, X_test)))
test_accuracy
"""

# the accuracy on the TRAINING rows reported as the test accuracy
EVALUATION_ON_TRAIN = """
test_accuracy = float(calculate_accuracy(Y_train, forward_pass(trained_variables, X_train)))
test_accuracy
"""

# biases as H×1 columns: x @ W1 (32×100) + b1 (100×1) cannot broadcast, the cell raises
TRAINING_CRASHES = TRAINING.replace(
    '"layer_1_bias": np.zeros(H)', '"layer_1_bias": np.zeros((H, 1))'
)

# trained with torch.nn.Linear, whose weight is stored (out, in): 100×64 and 10×100
TRAINING_TORCH = """
import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
inputs = torch.tensor(X_train, dtype=torch.float32)
targets = torch.tensor(y_train)
for epoch in range(30):
    order = torch.randperm(len(inputs))
    for start in range(0, len(order), 32):
        batch = order[start : start + 32]
        loss = torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
trained_variables = {
    "layer_1_weights": model[0].weight.detach().numpy(),
    "layer_1_bias": model[0].bias.detach().numpy(),
    "layer_2_weights": model[2].weight.detach().numpy(),
    "layer_2_bias": model[2].bias.detach().numpy(),
}
"""

EVALUATION_TORCH = """
with torch.no_grad():
    scores = model(torch.tensor(X_test, dtype=torch.float32))
test_accuracy = float((scores.argmax(dim=1).numpy() == y_test).mean())
test_accuracy
"""

# --- Q2 essays -----------------------------------------------------------------------

SOLUTION_Q2 = """
Batch normalisation (Ioffe and Szegedy, 2015) addresses internal covariate shift: while the
weights of the earlier layers change during training, the distribution of each layer's
inputs keeps moving, so every layer chases a moving target, and training needs small
learning rates and careful initialisation to stay stable.

During training, a batch-norm layer normalises every feature with the mini-batch mean and
variance: it subtracts the batch mean and divides by the square root of the batch variance
plus a small epsilon. It then applies a learned scale and shift, the parameters gamma and
beta, so that the layer can still represent the identity when that is best. The layer also
keeps running averages of the mean and variance across batches.

At inference, those running averages replace the batch statistics, so the output for one
example no longer depends on the other examples of its batch.

Its advantages: training is faster and more stable, much higher learning rates can be used
without divergence, the network is less sensitive to the initial weights, and the noise of
the batch statistics has a mild regularising effect, which sometimes makes dropout
unnecessary.
"""

SHORT_Q2 = """
Batch normalisation normalises the inputs of a layer with the mini-batch mean and variance,
then applies a learned scale and shift (gamma and beta). At inference it uses running
averages instead of the batch statistics. It lets us train with a higher learning rate.
"""

# seed 004's Question 2, in their own words (figures and references left out)
GUPTA_Q2 = """
Research – I am selecting Batch normalization as a research topic. A detailed description
and the problem that the batch normalization address, how it operates technically, and its
advantages are mentioned below.

A deep neural network with many layers is quite sensitive towards random weights and the
learning algorithm for that network get trained.

One potential justification of this problem is the appropriation of the distribution to
layers somewhere down in the network may change after each mini-batch when the weights are
updated. This can make the learning algorithm everlastingly pursue a moving target. This
adjustment of the conveyance of contributions to layers in the network is referred to as
the specialized name "internal covariate shift."

Batch normalization is a technique for training a deep neural network that normalizes the
contributions to a layer for each mini-batch. This balances out the learning interaction
and drastically diminishing the number of training epoch needed to train a deep network.
we normalize the distribution of each input feature in each layer across each mini-batch to
have zero mean and a standard deviation of one as shown in the figure.

How it operates

Dataset breaks into mini-batches and propagates into forward pass. it normalizes the data
by subtracting the mean and dividing by the standard deviation. Finally, we scale and shift
the data with the learned scale and shift parameters.

The problems that batch normalization address from a deep neural network –

- Batch normalization is used to normalize the input layer. It can be used with most
  network types like CNN, RNN etc.
- Batch normalization makes the network more stable during training.
- The stability to training brought by batch normalization can make training deep networks
  less sensitive to the choice of weight initialization method.
- Since mean and standard deviations calculated for each input feature are calculated over
  the minibatch, it can use to standardize raw input variable
- Batch normalization does regularization, reducing error itself. Therefore, no longer
  requiring the use of dropout for regularization
"""


@dataclass(frozen=True)
class Student:
    """One sample submission: its module, its notebook's code cells, its essay."""

    name: str
    module: str = field(default_factory=module)
    imports: str = IMPORTS
    training: str = TRAINING
    evaluation: str = EVALUATION
    essay: str = SOLUTION_Q2


def notebook(student: Student) -> Notebook:
    cells = [
        md(f"# HW1 — A neural network from low-level operations\n\nStudent: {student.name}"),
        code(student.imports),
        md("## Q1 — Training on digits"),
        code(DATA),
        code(student.training),
        code(student.evaluation),
        md("## Q2\n\n" + student.essay.strip("\n")),
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


SOLUTION = Student("solution")

# the notebook of a student whose hw1.py cannot be imported: functions defined inline
INLINE_IMPORTS = (
    IMPORTS.replace("from hw1 import calculate_accuracy, cross_entropy, forward_pass\n", "")
    + FORWARD_PASS
    + CROSS_ENTROPY
    + CALCULATE_ACCURACY
)

STUDENTS: list[Student] = [
    SOLUTION,
    Student(
        "gupta_seed",
        module=GUPTA_MODULE,
        essay=GUPTA_Q2,
    ),
    replace(SOLUTION, name="naive_softmax", module=module(forward=FORWARD_PASS_NAIVE)),
    replace(
        SOLUTION, name="rounding_accuracy", module=module(accuracy=CALCULATE_ACCURACY_ROUNDING)
    ),
    replace(SOLUTION, name="dropout_one_over_p", module=module(drop=DROPOUT_ONE_OVER_P)),
    replace(SOLUTION, name="dropout_binomial_mask", module=module(drop=DROPOUT_BINOMIAL_MASK)),
    replace(SOLUTION, name="claims_train_accuracy", evaluation=EVALUATION_ON_TRAIN),
    replace(
        SOLUTION,
        name="transposed_weights",
        training=TRAINING_TORCH,
        evaluation=EVALUATION_TORCH,
    ),
    replace(SOLUTION, name="short_essay", essay=SHORT_Q2),
    replace(
        SOLUTION,
        name="trains_at_import",
        module=module(tail=TRAIN_AT_IMPORT),
        imports=INLINE_IMPORTS,
    ),
    replace(SOLUTION, name="notebook_crashes", training=TRAINING_CRASHES),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for student in STUDENTS:
        folder = OUT / student.name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / "hw1.py").write_text(student.module, encoding="utf-8")
        nbformat.write(notebook(student), folder / "hw1.ipynb")


if __name__ == "__main__":
    main()
