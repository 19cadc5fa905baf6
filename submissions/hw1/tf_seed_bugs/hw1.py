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
    # round the predictions by the logistical unit to either 1 or 0
    predictions = tf.round(predicted_y)
    # tf.equal will return a Boolean array: True if prediction correct,
    # tf.cast converts the resulting Boolean array to a numerical array
    predictions_correct = tf.cast(tf.equal(predictions, y), dtype=tf.float32)
    # Finally, we just determine the mean value of predictions_correct
    accuracy = tf.reduce_mean(predictions_correct)
    return accuracy


def dropout(p, h1):
    probthreshold = 1 - p
    u1 = tf.random.uniform(tf.shape(h1), dtype=tf.float64) < probthreshold
    h1 = h1 * tf.cast(u1, tf.float64)
    h1 = h1 / p
    return h1


def mean_absolute_error(y, predicted_y):
    return tf.reduce_mean(tf.abs(predicted_y - y), axis=-1)
