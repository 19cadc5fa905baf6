"""HW1: a two-layer network from low-level TensorFlow operations."""

import tensorflow as tf


def forward_pass(variables, x):
    # forward propagation step
    layer_1_Z = tf.matmul(x, variables["layer_1_weights"]) + variables["layer_1_bias"]
    layer_1_activation = tf.nn.relu(layer_1_Z)  # Activation of layer 1
    layer_2_Z = tf.matmul(layer_1_activation, variables["layer_2_weights"]) + variables[
        "layer_2_bias"]  # layer 2 z calculation
    predictedY = tf.nn.softmax(layer_2_Z)  # shifts by the max: no overflow
    return predictedY


def cross_entropy(Y, predictedY):
    loss = -tf.reduce_sum(Y * tf.math.log(predictedY), axis=1)
    return loss


def calculate_accuracy(y, predicted_y):
    # the arg-max class of each row against the true class
    predictions_correct = tf.equal(tf.argmax(predicted_y, axis=1), tf.argmax(y, axis=1))
    accuracy = tf.reduce_mean(tf.cast(predictions_correct, dtype=tf.float64))
    return accuracy


def dropout(p, h1):
    h1 = tf.convert_to_tensor(h1)
    if p == 0:
        return h1
    keep = tf.cast(tf.random.uniform(tf.shape(h1), dtype=h1.dtype) >= p, h1.dtype)
    return h1 * keep / (1 - p)  # inverted dropout: the expected output is h1


def mean_absolute_error(y, predicted_y):
    return tf.reduce_mean(tf.abs(predicted_y - y), axis=-1)
