"""HW1: a two-layer network from low-level operations (NumPy)."""

import numpy as np


def forward_pass(variables, x):
    """Softmax probabilities of relu(x @ W1 + b1) @ W2 + b2, one row per example."""
    h1 = np.maximum(x @ variables["layer_1_weights"] + variables["layer_1_bias"], 0)
    z = h1 @ variables["layer_2_weights"] + variables["layer_2_bias"]
    z = z - z.max(axis=1, keepdims=True)  # exp never overflows
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(Y, predictedY):
    """Per-example loss -sum(Y * log(predictedY))."""
    return -np.sum(Y * np.log(predictedY), axis=1)


def calculate_accuracy(y, predicted_y):
    """Fraction of rows whose arg-max class matches."""
    return float(np.mean(np.argmax(y, axis=1) == np.argmax(predicted_y, axis=1)))


def dropout(p, h1):
    """Inverted dropout: drop with probability p, scale the survivors by 1/(1-p)."""
    if p == 0:
        return h1.copy()
    keep = np.random.rand(*h1.shape) >= p
    return h1 * keep / (1 - p)


def mean_absolute_error(y, predicted_y):
    """Per-row mean of |predicted_y - y|."""
    return np.mean(np.abs(predicted_y - y), axis=1)


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
