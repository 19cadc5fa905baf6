"""Reference of the small validate rubrics: compute() and a case generator that fails."""


def compute():
    return {"a": 2}


def double(x):
    return 2 * x


def broken_cases():
    raise ValueError("no case of size 0 can be made")
