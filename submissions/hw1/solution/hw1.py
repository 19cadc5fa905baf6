"""HW1: a two-layer network from low-level operations (NumPy)."""

import numpy as np


def forward_pass(variables, x):
    """Softmax probabilities of relu(x @ W1 + b1) @ W2 + b2, one row per example."""
    ### BEGIN SOLUTION
    h1 = np.maximum(x @ variables["layer_1_weights"] + variables["layer_1_bias"], 0)
    z = h1 @ variables["layer_2_weights"] + variables["layer_2_bias"]
    z = z - z.max(axis=1, keepdims=True)  # exp never overflows
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
    ### END SOLUTION


def cross_entropy(Y, predictedY):
    """Per-example loss -sum(Y * log(predictedY))."""
    ### BEGIN SOLUTION
    return -np.sum(Y * np.log(predictedY), axis=1)
    ### END SOLUTION


def calculate_accuracy(y, predicted_y):
    """Fraction of rows whose arg-max class matches."""
    ### BEGIN SOLUTION
    return float(np.mean(np.argmax(y, axis=1) == np.argmax(predicted_y, axis=1)))
    ### END SOLUTION


def dropout(p, h1):
    """Inverted dropout: drop with probability p, scale the survivors by 1/(1-p)."""
    ### BEGIN SOLUTION
    if p == 0:
        return h1.copy()
    keep = np.random.rand(*h1.shape) >= p
    return h1 * keep / (1 - p)
    ### END SOLUTION


def mean_absolute_error(y, predicted_y):
    """Per-row mean of |predicted_y - y|."""
    ### BEGIN SOLUTION
    return np.mean(np.abs(predicted_y - y), axis=1)
    ### END SOLUTION
