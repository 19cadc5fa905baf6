"""A reference whose compute() raises."""


def compute():
    raise KeyError("learning_rate")
