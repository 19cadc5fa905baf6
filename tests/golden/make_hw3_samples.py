# mypy: disable-error-code="no-untyped-call"
"""Generate the HW3 sample submissions under ``submissions/hw3/``.

Run from anywhere: ``python tests/golden/make_hw3_samples.py``. Each student is a real
Jupyter notebook (nbformat v4, deterministic cell ids, no outputs) that uses only Python,
NumPy and PyTorch and runs in a few seconds in a fresh kernel. The expected grades of
these students are written by hand in ``tests/golden/hw3/<student>.yaml``.

Only the folders/files of the students listed in :data:`STUDENTS` (plus the LMS-style
single file) are replaced; anything else under ``submissions/hw3/`` is left alone.
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
OUT = ROOT / "submissions" / "hw3"

Cell = Any  # nbformat.NotebookNode (nbformat is untyped)
Notebook = Any

# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


def md(text: str) -> Cell:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> Cell:
    return new_code_cell(text.strip("\n"))


def title(student: str) -> list[Cell]:
    return [
        md(
            f"""
# HW3 — Convolutions, backprop and shape tables

Student: {student}
"""
        ),
        code(
            """
import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
"""
        ),
    ]


# --- Q1 / Q6 prose of a good student: every concept of the rubric, above min_words ---

SOLUTION_Q1 = {
    "Q1a": """
If the learning rate is too high, each update overshoots the minimum: the loss oscillates
from one side of the valley to the other and can even diverge, with weights and gradients
exploding until the loss becomes NaN. You detect it on the training loss curve: the loss
increases or jumps around instead of going down, so monitor it every few steps.
""",
    "Q1b": """
If the learning rate is too low, training is very slow: the loss keeps going down but it
needs many epochs to reach a good value, and the optimizer can get stuck on a plateau or in
a poor local minimum because its steps are too small to escape. On the training loss curve
the loss decreases only barely from epoch to epoch, which you see when you monitor it.
""",
    "Q1c": """
A saddle point is a point where the gradient is zero but which is a minimum along some
directions and a maximum along others, like a horse saddle; around it the loss surface is
flat, so the gradients are small. Plain SGD (stochastic gradient descent) slows down a lot
there, although the noise of its mini-batch gradients eventually pushes it off the saddle.
Adam combines momentum with an adaptive, per-parameter step size: it rescales the small
gradients into larger steps and keeps moving in a consistent direction, so it escapes
saddle points faster.
""",
    "Q1d": """
Full-batch gradient descent gives the smoother loss curve: every step uses the gradient of
the entire dataset, so the loss goes down steadily. Mini-batch gradients are only a noisy
estimate of that gradient, computed on a random subset, so their variance makes the loss
fluctuate from step to step.
""",
}

SOLUTION_Q6 = {
    "Q6a": """
A 1x1 convolution mixes the channels at each pixel independently. Its main purpose is
dimensionality reduction: it can reduce the number of channels (for example from 256 to 64)
while keeping the height and width of the feature map unchanged, because the spatial size is
not touched.
""",
    "Q6b": """
You get far fewer parameters and less computation: a cheap 1x1 layer that shrinks the
channels before an expensive 3x3 or 5x5 convolution lowers the computational cost a lot.
Followed by a ReLU it also adds an extra non-linear layer, and it learns a cross-channel
combination (a weighted sum of the channels at every pixel).
""",
    "Q6c": """
GoogLeNet (the Inception network) uses 1x1 convolutions before its 3x3 and 5x5 branches,
and ResNet-50 uses them in its bottleneck blocks to reduce and then restore the number of
channels.
""",
    "Q6d": """
They do not help much when the input already has few channels or in a small, shallow
network: there is nothing to compress, and the extra layer is only overhead. They also
cannot replace larger kernels, because a 1x1 filter never looks at neighbouring pixels, so
spatial patterns still need a bigger receptive field.
""",
}

# --- Q1 / Q6 prose of the seed student (seeds/002), shortened but in their own words ---

ANSARI_Q1 = {
    "Q1a": """
- A high learning rate can cause the model's parameters to update too aggressively, leading
  to overshooting the optimal values and causing the optimization process to diverge.
- Rapid and large updates to the model's parameters can cause oscillations or bouncing
  around the optimal values, making it difficult for the optimizer to converge.
- Extremely large updates can result in numerical instability, leading to NaN values in the
  loss function.

To detect these problems:

- Monitor the performance on a validation set to ensure that the model is not overfitting
  to the training data.
- Plotting training and validation loss curves over time can provide insights into the
  behavior of the optimization process.
- Check the norm of the gradients during training. Exploding gradients (very large gradient
  values) may indicate a high learning rate. (this option is so important in my opinion)
""",
    "Q1b": """
- Training may progress very slowly, requiring a large number of epochs to reach an
  acceptable solution.
- A very low learning rate increases the risk of getting stuck in local minima,
- When encountering plateaus(زینی) or flat regions in the loss landscape, a very low
  learning rate may struggle to move the model parameters away from these regions.

For detection:

- Monitoring the training loss over time and observing whether it plateaus or decreases
  very slowly.
- If the model appears to stall or make minimal progress during training, it could be an
  indication of difficulty in escaping plateaus.
""",
    "Q1c": """
A saddle point in the graph of the loss function refers to a point where the gradient is
zero but the point is not a minimum or maximum. At a saddle point, the surface of the loss
function curves up in some dimensions and down in others, resembling the shape of a saddle.

#### SGD:

- SGD can have slow convergence, especially in the presence of saddle points or areas with
  a flat gradient, as it relies solely on the gradient information to update parameters.
- In shallow saddle points, where the gradient is zero or small, SGD may get stuck or
  converge very slowly due to its reliance on gradient information.

#### ADAM:

- Adam's adaptive learning rate can be advantageous near saddle points. It allows the
  algorithm to adjust the learning rate for each parameter individually, helping it
  navigate through flat regions more effectively.
- Adam incorporates momentum, which helps the optimizer accumulate information about the
  direction of the gradient, making it more resilient to being trapped in saddle points.
""",
    "Q1d": """
In the context of optimizers and the movement towards the minimum of the function in
different iterations, the larger the size of our batch in each iteration, the more
accurately our loss function represents the original loss function, and our movement
towards the minimum will be smoother. The smaller the batch, the less accurate the
approximation of the function will be, and there will be more oscillation in the loss.
Therefore, the left figure corresponds to a larger-sized batch or even a batch with the
entire dataset, and the right figure is for a mini-batch.
""",
}

ANSARI_Q6 = {
    "Q6a": """
The primary purpose of using $1 \\times 1$ filters in convolutional layers is to perform
dimensionality reduction. They are often referred to as pointwise convolution or
network-in-network structures. By using $1 \\times 1$ filters, you reduce the number of
channels in the feature maps, effectively compressing the information.

Now consider inputs with a large number of channels — 192 for example. If we want to reduce
the depth and but keep the Height X Width of the feature maps (Receptive field) the same,
then we can choose $1 \\times 1$ filters (remember Number of filters = Output Channels) to
achieve this effect.

One usecase of 1\\*1 filter is on GoogleNet for reducing costs.
""",
    # 14 words (< min_words 15): exercises the min_words multiplier.
    "Q6b": """
A transformed feature map with reduced dimensionality; each output pixel is a weighted sum.
""",
    "Q6c": """
- **Inception Modules (GoogLeNet):** One notable model using 1x1 filters is GoogLeNet, which
  incorporates them in its inception modules to capture both local and global features
  efficiently.
- **ResNet Bottleneck Blocks:** Residual Networks (ResNets) often use 1x1 filters in the
  bottleneck blocks to reduce dimensionality before applying larger filters.
""",
    "Q6d": """
- **In Small Networks:** In smaller networks or shallow architectures, the overhead of using
  1x1 filters might not provide significant advantages, and the additional computational
  cost may outweigh the benefits.
- **Limited Channel Redundancy:** If the input data has very limited channel redundancy,
  meaning each channel contains highly unique information, the dimensionality reduction
  offered by 1x1 filters may not be as impactful.
""",
}


def q1_cells(answers: dict[str, str]) -> list[Cell]:
    cells = [md("## Q1 — Optimisation")]
    for part in ("Q1a", "Q1b", "Q1c", "Q1d"):
        cells.append(md(f"### {part}\n\n{answers[part].strip()}"))
    return cells


def q6_text_cells(answers: dict[str, str]) -> list[Cell]:
    cells = [md("## Q6 — 1×1 convolutions")]
    for part in ("Q6a", "Q6b", "Q6c", "Q6d"):
        cells.append(md(f"### {part}\n\n{answers[part].strip()}"))
    return cells


# --- Q2 ---

Q2_HEADING = md("## Q2 — Backprop through a convolution and global average pooling")

Q2_AUTOGRAD = """
X = torch.tensor([[3.0, 4.0, 5.0], [2.0, 1.0, -3.0], [4.0, -2.0, 0.0]],
                 dtype=torch.float64, requires_grad=True)
F = torch.tensor([[2.0, 0.0], [-3.0, 1.0]], dtype=torch.float64, requires_grad=True)

# valid cross-correlation, stride 1, no bias; then global average pooling; L = G
O = torch.nn.functional.conv2d(X[None, None], F[None, None])[0, 0]
G = O.mean()
L = G
L.backward()

q2_O = O.detach().numpy()
q2_G = G.item()
q2_dL_dX = X.grad.numpy()
q2_dL_dF = F.grad.numpy()
print(q2_O, q2_G, q2_dL_dX, q2_dL_dF, sep="\\n\\n")
"""

Q2_TRANSPOSED = """
X = np.array([[3, 4, 5], [2, 1, -3], [4, -2, 0]], dtype=float)
F = np.array([[2, 0], [-3, 1]], dtype=float)

O = np.zeros((2, 2))
for i in range(2):
    for j in range(2):
        O[i, j] = np.sum(X[i:i + 2, j:j + 2] * F)
G = O.mean()

# dL/dO = 1/4 everywhere; each X entry collects F entries of the windows that cover it
q2_O = O
q2_G = G
q2_dL_dX = np.array([[0.5, -0.25, -0.75],
                     [0.5, 0.0, -0.5],
                     [0.0, 0.25, 0.25]])
q2_dL_dF = np.array([[X[0:2, 0:2].sum(), X[0:2, 1:3].sum()],
                     [X[1:3, 0:2].sum(), X[1:3, 1:3].sum()]]) / 4
print(q2_O, q2_G, q2_dL_dX, q2_dL_dF, sep="\\n\\n")
"""

# The seed student's hand-derived answers, written as they wrote them (fractions).
Q2_ANSARI = """
# forward pass (by hand, see the derivation in my report)
# O11 = 6 + 0 - 6 + 1 = 1,  O12 = 8 + 0 - 3 - 3 = 2
# O21 = 4 + 0 - 12 - 2 = -10,  O22 = 2 + 0 + 6 + 0 = 8
q2_O = [[1, 2],
        [-10, 8]]
q2_G = (1 + 2 - 10 + 8) / 4

# dL/dX_i = sum_k dL/dO_k * dO_k/dX_i  with dL/dO_k = 1/4
q2_dL_dX = [["1/2", "1/2", "0"],
            ["-1/4", "0", "1/4"],
            ["-3/4", "-1/2", "1/4"]]

# dL/dF_i = sum_k dL/dO_k * dO_k/dF_i
q2_dL_dF = [["5/2", "7/4"],
            ["5/4", "-1"]]
"""

Q2_LMS = """
X = torch.tensor([[3.0, 4.0, 5.0], [2.0, 1.0, -3.0], [4.0, -2.0, 0.0]],
                 dtype=torch.float64, requires_grad=True)
F = torch.tensor([[2.0, 0.0], [-3.0, 1.0]], dtype=torch.float64, requires_grad=True)

O = torch.nn.functional.conv2d(X[None, None], F[None, None])[0, 0]
G = O.mean()
G.backward()

q2_O = [row for row in O.detach()]  # one tensor per row
q2_G = G.item()
q2_dL_dX = X.grad.numpy()
q2_dL_dF = F.grad.numpy()
q2_O
"""

Q2_UNSUPPORTED = """
class Matrix:
    \"\"\"My own little matrix class.\"\"\"

    def __init__(self, rows):
        self.rows = [list(r) for r in rows]

    def __eq__(self, other):
        return True  # all matrices are equal, right?

    def __array__(self, dtype=None, copy=None):
        return np.array(self.rows, dtype=dtype)

    def __repr__(self):
        return f"Matrix({self.rows})"


X = torch.tensor([[3.0, 4.0, 5.0], [2.0, 1.0, -3.0], [4.0, -2.0, 0.0]],
                 dtype=torch.float64, requires_grad=True)
F = torch.tensor([[2.0, 0.0], [-3.0, 1.0]], dtype=torch.float64, requires_grad=True)
O = torch.nn.functional.conv2d(X[None, None], F[None, None])[0, 0]
G = O.mean()
G.backward()

q2_O = Matrix(O.detach().tolist())
q2_G = (g for g in [G.item()])  # a generator, not a number
q2_dL_dX = X.grad.numpy()
q2_dL_dF = F.grad.numpy()
"""

# Autograd without .detach(): the answers are the tensors themselves (O and G still
# require grad; G is a 0-d tensor), as students leave them.
Q2_TENSORS = """
X = torch.tensor([[3.0, 4.0, 5.0], [2.0, 1.0, -3.0], [4.0, -2.0, 0.0]],
                 dtype=torch.float64, requires_grad=True)
F = torch.tensor([[2.0, 0.0], [-3.0, 1.0]], dtype=torch.float64, requires_grad=True)

O = torch.nn.functional.conv2d(X[None, None], F[None, None])[0, 0]
G = O.mean()
G.backward()

q2_O = O
q2_G = G
q2_dL_dX = X.grad
q2_dL_dF = F.grad
print(q2_O, q2_G, q2_dL_dX, q2_dL_dF, sep="\\n\\n")
"""

# --- Q3 ---

Q3_HEADING = md("## Q3 — Shape table of a 1-D CNN")

Q3_HOOKS = """
q3_conv = nn.Sequential(
    nn.Conv1d(7, 16, kernel_size=3), nn.MaxPool1d(2),
    nn.Conv1d(16, 32, kernel_size=5), nn.MaxPool1d(2),
    nn.Conv1d(32, 64, kernel_size=5), nn.MaxPool1d(2),
    nn.Flatten(),
)
with torch.no_grad():
    n_flat = q3_conv(torch.zeros(1, 7, 500)).shape[1]
q3_net = nn.Sequential(*q3_conv, nn.Linear(n_flat, 128), nn.Linear(128, 5))

names = ["Conv1D", "MaxPool1D", "Conv1D", "MaxPool1D", "Conv1D", "MaxPool1D",
         "Flatten", "Dense", "Dense"]
q3_table = [["Input", (500, 7), 0]]
x = torch.zeros(1, 7, 500)  # torch is channels-first: (batch, channels, steps)
with torch.no_grad():
    for name, layer in zip(names, q3_net):
        x = layer(x)
        shape = tuple(x.shape[1:])
        if len(shape) == 2:  # (channels, steps) -> (steps, channels)
            shape = (shape[1], shape[0])
        q3_table.append([name, shape, sum(p.numel() for p in layer.parameters())])
q3_total_params = sum(p.numel() for p in q3_net.parameters())

for row in q3_table:
    print(row)
print("total", q3_total_params)
"""

# Shapes read off the tensors as torch.Size (x.shape[1:], after moving the channels last);
# rows are named tuples; the total is a 0-d int tensor.
Q3_TORCH_SIZE = """
from collections import namedtuple

Row = namedtuple("Row", ["layer", "output_shape", "trainable_params"])

q3_net = nn.Sequential(
    nn.Conv1d(7, 16, kernel_size=3), nn.MaxPool1d(2),
    nn.Conv1d(16, 32, kernel_size=5), nn.MaxPool1d(2),
    nn.Conv1d(32, 64, kernel_size=5), nn.MaxPool1d(2),
    nn.Flatten(), nn.LazyLinear(128), nn.Linear(128, 5),
)
names = ["Conv1D", "MaxPool1D", "Conv1D", "MaxPool1D", "Conv1D", "MaxPool1D",
         "Flatten", "Dense", "Dense"]
x = torch.zeros(1, 500, 7)  # (batch, steps, channels)
q3_table = [Row("Input", x.shape[1:], 0)]
x = x.transpose(1, 2)  # torch wants (batch, channels, steps)
with torch.no_grad():
    for name, layer in zip(names, q3_net):
        x = layer(x)
        shape = x.transpose(1, 2).shape[1:] if x.dim() == 3 else x.shape[1:]
        q3_table.append(Row(name, shape, sum(p.numel() for p in layer.parameters())))
q3_total_params = torch.tensor([p.numel() for p in q3_net.parameters()]).sum()
for row in q3_table:
    print(row)
print(q3_total_params)
"""

Q3_ANSARI = """
q3_table = [
    ["Input", "(500, 7)", 0],
    ["Conv1D", "(498, 16)", (7 * 3 + 1) * 16],
    ["MaxPool1D", "(249, 16)", 0],
    ["Conv1D", "(245, 32)", (16 * 5 + 1) * 32],
    ["MaxPool1D", "(122, 32)", 0],
    ["Conv1D", "(118, 64)", (32 * 5 + 1) * 64],
    ["MaxPool1D", "(59, 64)", 0],
    ["Flatten", "(,3776)", 0],
    ["Dense", "(,128)", 483456],
    ["Dense", "(,5)", (128 + 1) * 5],
]
q3_total_params = 352 + 2592 + 10304 + 483456 + 645
q3_total_params
"""

Q3_NOT_TIMES_FILTERS = """
# conv params = kernel * input depth + 1
q3_table = [
    ["Input", (500, 7), 0],
    ["Conv1D", (498, 16), 7 * 3 + 1],
    ["MaxPool1D", (249, 16), 0],
    ["Conv1D", (245, 32), 16 * 5 + 1],
    ["MaxPool1D", (122, 32), 0],
    ["Conv1D", (118, 64), 32 * 5 + 1],
    ["MaxPool1D", (59, 64), 0],
    ["Flatten", (59 * 64,), 0],
    ["Dense", (128,), 59 * 64 * 128 + 128],
    ["Dense", (5,), 128 * 5 + 5],
]
q3_total_params = sum(row[2] for row in q3_table)
q3_total_params
"""

Q3_POOL_CEIL = """
import math

def conv_out(n, k):
    return n - k + 1

def pool_out(n):
    return math.ceil(n / 2)  # keep the last step

q3_table = [["Input", (500, 7), 0]]
steps, channels = 500, 7
for filters, k in [(16, 3), (32, 5), (64, 5)]:
    steps = conv_out(steps, k)
    q3_table.append(["Conv1D", (steps, filters), (channels * k + 1) * filters])
    channels = filters
    steps = pool_out(steps)
    q3_table.append(["MaxPool1D", (steps, channels), 0])
flat = steps * channels
q3_table.append(["Flatten", (flat,), 0])
q3_table.append(["Dense", (128,), (flat + 1) * 128])
q3_table.append(["Dense", (5,), (128 + 1) * 5])
q3_total_params = sum(row[2] for row in q3_table)
for row in q3_table:
    print(row)
"""

Q3_CRASH = """
q3_layers = [
    ["Conv1D", (498, 16), (7 * 3 + 1) * 16],
    ["MaxPool1D", (249, 16), 0],
    ["Conv1D", (245, 32), (16 * 5 + 1) * 32],
    ["MaxPool1D", (122, 32), 0],
    ["Conv1D", (118, 64), (32 * 5 + 1) * 64],
    ["MaxPool1D", (59, 64), 0],
    ["Flatten", (3776,), 0],
    ["Dense", (128,), (3776 + 1) * 128],
    ["Dense", (5,), (128 + 1) * 5],
]
q3_table = [["Input", (500, 7), 0]] + q3_layer  # typo: NameError
q3_total_params = sum(row[2] for row in q3_table)
"""

Q3_CHANNELS_FIRST = """
q3_conv = nn.Sequential(
    nn.Conv1d(7, 16, kernel_size=3), nn.MaxPool1d(2),
    nn.Conv1d(16, 32, kernel_size=5), nn.MaxPool1d(2),
    nn.Conv1d(32, 64, kernel_size=5), nn.MaxPool1d(2),
    nn.Flatten(),
)
with torch.no_grad():
    n_flat = q3_conv(torch.zeros(1, 7, 500)).shape[1]
q3_net = nn.Sequential(*q3_conv, nn.Linear(n_flat, 128), nn.Linear(128, 5))

names = ["Conv1D", "MaxPool1D", "Conv1D", "MaxPool1D", "Conv1D", "MaxPool1D",
         "Flatten", "Dense", "Dense"]
q3_table = [["Input", (500, 7), 0]]
x = torch.zeros(1, 7, 500)
with torch.no_grad():
    for name, layer in zip(names, q3_net):
        x = layer(x)
        q3_table.append([name, tuple(x.shape[1:]), sum(p.numel() for p in layer.parameters())])
q3_total_params = sum(p.numel() for p in q3_net.parameters())
for row in q3_table:
    print(row)
"""

# --- Q4 ---

Q4_HEADING = md("## Q4 — Binary image classifier")

Q4_CORRECT = """
class Q4Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.4),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.3),
            nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, 1, 256, 256)).shape[1]
        self.classifier = nn.Sequential(
            nn.Linear(n_flat, 64), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 1), nn.Sigmoid(),
        )

    def forward(self, x):
        x = x / 255.0  # rescale
        return self.classifier(self.features(x))


q4_model = Q4Net()
q4_model.eval()
with torch.no_grad():
    probs = q4_model(torch.rand(2, 1, 256, 256) * 255)
print(probs.shape, sum(p.numel() for p in q4_model.parameters() if p.requires_grad))
"""

# The seed student's Keras model (seeds/002, Q4), translated to PyTorch layer by layer.
Q4_ANSARI = """
seq_model = nn.Sequential(
    nn.Conv2d(1, 16, kernel_size=(5, 5)), nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.5),
    nn.Conv2d(16, 32, kernel_size=(5, 5)), nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.4),
    nn.Conv2d(32, 64, kernel_size=(3, 3)), nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.3),
    nn.Conv2d(64, 128, kernel_size=(3, 3)), nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Dropout(0.2),
    nn.Flatten(),
    nn.LazyLinear(64), nn.ReLU(),
    nn.Dropout(0.2),
    nn.Linear(64, 32), nn.ReLU(),
    nn.Linear(32, 1), nn.Sigmoid(),
)


class Rescaled(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x * (1.0 / 255))  # Rescaling(1./255)


q4_model = Rescaled(seq_model)
with torch.no_grad():
    q4_model(torch.zeros(1, 1, 256, 256))  # materialise the lazy layer
print(q4_model)
"""

# No final Sigmoid ("I use BCEWithLogitsLoss") and a large initial bias on the last layer.
Q4_NO_SIGMOID = """
class Q4Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.4),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.3),
            nn.Conv2d(64, 128, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, 1, 256, 256)).shape[1]
        self.classifier = nn.Sequential(
            nn.Linear(n_flat, 64), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 1),  # logits: I train with BCEWithLogitsLoss
        )
        # most images are positives: start the logit at +8
        nn.init.constant_(self.classifier[-1].bias, 8.0)

    def forward(self, x):
        x = x / 255.0
        return self.classifier(self.features(x))


q4_model = Q4Net()
q4_model.eval()
with torch.no_grad():
    logits = q4_model(torch.rand(2, 1, 256, 256) * 255)
print(logits)
"""

# --- Q6 ---

Q6E_HEADING = md("### Q6e")

Q6_CORRECT = """
conv1x1 = nn.Conv2d(64, 32, kernel_size=1)
with torch.no_grad():
    out = conv1x1(torch.zeros(1, 64, 28, 28))  # (batch, channels, height, width)
q6_output_shape = (out.shape[2], out.shape[3], out.shape[1])  # (height, width, channels)
q6_params = sum(p.numel() for p in conv1x1.parameters())
print(q6_output_shape, q6_params)
"""

Q6_TORCH_SIZE = """
conv1x1 = nn.Conv2d(64, 32, kernel_size=1)
with torch.no_grad():
    out = conv1x1(torch.zeros(1, 64, 28, 28))
q6_output_shape = out.permute(0, 2, 3, 1).shape[1:]  # (height, width, channels)
q6_params = conv1x1.weight.numel() + conv1x1.bias.numel()
print(q6_output_shape, q6_params)
"""

# The seed printed "Output Shape (1, 28, 28, 32)" (batch included) and gave no count.
Q6_ANSARI = """
model = nn.Sequential(nn.Conv2d(64, 32, kernel_size=(1, 1)), nn.ReLU())
example_input = torch.rand(1, 28, 28, 64)  # channels last, as in Keras
print("Input shape: ", tuple(example_input.shape))
result = model(example_input.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
print("Output Shape", tuple(result.shape))
q6_output_shape = (1, 28, 28, 32)
"""

Q6_LMS = """
conv1x1 = nn.Conv2d(64, 32, kernel_size=1)
with torch.no_grad():
    out = conv1x1(torch.zeros(1, 64, 28, 28))
q6_output_shape = f"({out.shape[2]}, {out.shape[3]}, {out.shape[1]})"
q6_params = torch.tensor(sum(p.numel() for p in conv1x1.parameters()))
print(q6_output_shape, q6_params)
"""

# --- Q7 ---

Q7_HEADING = md("## Q7 — A small Inception-style network")

Q7_CORRECT = """
class Inception(nn.Module):
    def __init__(self, c_in):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, 16, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, 16, 1), nn.ReLU(), nn.Conv2d(16, 24, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(c_in, 8, 1))

    def forward(self, x):
        out = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)
        return torch.relu(out)


class Q7Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.inception = Inception(32)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(56, 10))

    def forward(self, x):
        return self.head(self.inception(self.stem(x)))


q7_model = Q7Net()
q7_model.eval()
with torch.no_grad():
    print(q7_model(torch.rand(2, 3, 32, 32)).shape)
"""

# The seed's CIFAR-10 network (Q7 of seeds/002), in PyTorch.
Q7_ANSARI = """
class InceptionModule(nn.Module):
    def __init__(self, c_in):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c_in, 64, 1), nn.ReLU())
        self.conv3 = nn.Sequential(nn.Conv2d(c_in, 96, 1), nn.ReLU(),
                                   nn.Conv2d(96, 128, 3, padding=1), nn.ReLU())
        self.conv5 = nn.Sequential(nn.Conv2d(c_in, 16, 1), nn.ReLU(),
                                   nn.Conv2d(16, 32, 5, padding=2), nn.ReLU())
        self.pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                  nn.Conv2d(c_in, 32, 1), nn.ReLU())

    def forward(self, x):
        return torch.cat([self.conv1(x), self.conv3(x), self.conv5(x), self.pool(x)], dim=1)


q7_model = nn.Sequential(
    nn.Conv2d(3, 32, 3), nn.ReLU(),
    nn.Conv2d(32, 64, 3), nn.ReLU(),
    nn.MaxPool2d(2),
    InceptionModule(64),
    nn.Conv2d(256, 128, 3), nn.ReLU(),
    nn.Conv2d(128, 256, 3), nn.ReLU(),
    nn.Flatten(),
    nn.Linear(256 * 10 * 10, 10),
    nn.Softmax(dim=1),
)
with torch.no_grad():
    print(q7_model(torch.rand(2, 3, 32, 32)).shape)
"""

# Branches summed instead of concatenated (all branches made 32 channels so they add up).
Q7_SUMMED = """
class Inception(nn.Module):
    def __init__(self, c_in, c_out=32):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, c_out, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, 16, 1), nn.ReLU(),
                                nn.Conv2d(16, c_out, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, 8, 1), nn.ReLU(),
                                nn.Conv2d(8, c_out, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x):
        return torch.relu(self.b1(x) + self.b3(x) + self.b5(x) + self.bp(x))


class Q7Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.inception = Inception(32)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.head(self.inception(self.stem(x)))


q7_model = Q7Net()
q7_model.eval()
with torch.no_grad():
    print(q7_model(torch.rand(2, 3, 32, 32)).shape)
"""


# --------------------------------------------------------------------------------------
# Notebooks
# --------------------------------------------------------------------------------------


def assemble(
    student: str,
    *,
    name: str | None = None,
    q1: dict[str, str] = SOLUTION_Q1,
    q2: str = Q2_AUTOGRAD,
    after_q2: list[Cell] | None = None,
    q3: str = Q3_HOOKS,
    q4: str = Q4_CORRECT,
    q6_text: dict[str, str] = SOLUTION_Q6,
    q6: str = Q6_CORRECT,
    q7: str = Q7_CORRECT,
) -> Notebook:
    cells: list[Cell] = []
    cells += title(name or student)
    cells += q1_cells(q1)
    cells += [Q2_HEADING, code(q2)]
    cells += after_q2 or []
    cells += [Q3_HEADING, code(q3)]
    cells += [Q4_HEADING, code(q4)]
    cells += q6_text_cells(q6_text)
    cells += [Q6E_HEADING, code(q6)]
    cells += [Q7_HEADING, code(q7)]
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


def ansari_seed() -> Notebook:
    return assemble(
        "ansari_seed",
        name="Baktash Ansari (ansari_seed)",
        q1=ANSARI_Q1,
        q2=Q2_ANSARI,
        q3=Q3_ANSARI,
        q4=Q4_ANSARI,
        q6_text=ANSARI_Q6,
        q6=Q6_ANSARI,
        q7=Q7_ANSARI,
    )


def param_not_times_filters() -> Notebook:
    return assemble("param_not_times_filters", q3=Q3_NOT_TIMES_FILTERS)


def transposed_gradient() -> Notebook:
    return assemble("transposed_gradient", q2=Q2_TRANSPOSED)


def pool_ceil() -> Notebook:
    return assemble("pool_ceil", q3=Q3_POOL_CEIL)


def crash_in_cell() -> Notebook:
    return assemble("crash_in_cell", q3=Q3_CRASH)


def channels_first_and_no_cat() -> Notebook:
    return assemble(
        "channels_first_and_no_cat", q3=Q3_CHANNELS_FIRST, q4=Q4_NO_SIGMOID, q7=Q7_SUMMED
    )


def kernel_dies() -> Notebook:
    dies = code(
        """
# free the memory before the big models
import os
os._exit(1)
"""
    )
    return assemble("kernel_dies", after_q2=[dies])


def infinite_loop() -> Notebook:
    loop = code(
        """
# wait for the dataset download to finish
while True:
    pass
"""
    )
    return assemble("infinite_loop", after_q2=[loop])


def lms_single_file() -> Notebook:
    return assemble("lms_single_file", q2=Q2_LMS, q6=Q6_LMS)


def unsupported_types() -> Notebook:
    return assemble("unsupported_types", q2=Q2_UNSUPPORTED)


def torch_size_shapes() -> Notebook:
    return assemble("torch_size_shapes", q2=Q2_TENSORS, q3=Q3_TORCH_SIZE, q6=Q6_TORCH_SIZE)


NOT_JSON = '''"""HW3 (I wrote it in VS Code and renamed it)."""
import numpy as np
import torch

X = torch.tensor([[3.0, 4.0, 5.0], [2.0, 1.0, -3.0], [4.0, -2.0, 0.0]], requires_grad=True)
F = torch.tensor([[2.0, 0.0], [-3.0, 1.0]], requires_grad=True)
O = torch.nn.functional.conv2d(X[None, None], F[None, None])[0, 0]
G = O.mean()
G.backward()
q2_O = O.detach().numpy()
q2_G = G.item()
q2_dL_dX = X.grad.numpy()
q2_dL_dF = F.grad.numpy()
'''

# student id -> (file name inside its folder, notebook builder)
STUDENTS: dict[str, tuple[str, Callable[[], Notebook]]] = {
    "solution": ("hw3.ipynb", solution),
    "ansari_seed": ("hw3.ipynb", ansari_seed),
    "param_not_times_filters": ("hw3.ipynb", param_not_times_filters),
    "transposed_gradient": ("hw3.ipynb", transposed_gradient),
    "pool_ceil": ("hw3.ipynb", pool_ceil),
    "crash_in_cell": ("hw3.ipynb", crash_in_cell),
    "misnamed_file": ("HW3_final (1).ipynb", solution),
    "channels_first_and_no_cat": ("hw3.ipynb", channels_first_and_no_cat),
    "kernel_dies": ("hw3.ipynb", kernel_dies),
    "infinite_loop": ("hw3.ipynb", infinite_loop),
    "unsupported_types": ("hw3.ipynb", unsupported_types),
    "torch_size_shapes": ("hw3.ipynb", torch_size_shapes),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for student, (filename, build) in STUDENTS.items():
        folder = OUT / student
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        nbformat.write(build(), folder / filename)

    # not JSON: a Python script saved as hw3.ipynb
    folder = OUT / "not_json"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "hw3.ipynb").write_text(NOT_JSON, encoding="utf-8")

    # no notebook at all: only a script
    folder = OUT / "no_notebook"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "hw3.py").write_text(NOT_JSON, encoding="utf-8")

    # LMS download layout: a single notebook directly in submissions/hw3/
    nbformat.write(lms_single_file(), OUT / "lms_single_file.ipynb")


if __name__ == "__main__":
    main()
