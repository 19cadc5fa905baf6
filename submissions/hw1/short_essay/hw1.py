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
