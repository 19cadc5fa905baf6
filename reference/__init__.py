"""Reference implementations: the ground truth every rubric's expected values come from.

Each module ``reference/<assignment>.py`` exposes ``compute() -> dict[str, Any]``; every
value it returns is computed (by PyTorch/NumPy), never typed by hand.
"""
