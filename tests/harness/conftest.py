"""Fixtures shared by the harness tests: TensorFlow and Keras imported once per session.

TensorFlow takes seconds to import, so only the tests that ask for ``tf_keras`` pay for
it (setup installs it: nothing is skipped)."""

from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tf_keras() -> tuple[Any, Any]:
    """``(tensorflow, keras)`` on the TensorFlow backend, quiet."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    return tf, keras
