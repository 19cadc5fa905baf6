"""Assignment 01 Deep Learning (seed 004), TensorFlow translated to NumPy."""

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
