"""Encoders for the marks tests: a fake one (bag of words, no model) for most tests, and
the real model, loaded once per session, for the few that test matching by meaning."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pytest

from grader.marks.embed import E5Encoder, Vectors, default_encoder


class BagOfWords:
    """Each word hashed to one of 64 axes; rows normalised. Same words, same vector."""

    name = "bag of words (tests)"

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, hashlib.sha256(word.encode()).digest()[0] % 64] += 1.0
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-12)
        return out


@pytest.fixture
def bag() -> BagOfWords:
    return BagOfWords()


@pytest.fixture(scope="session")
def e5() -> E5Encoder:
    """The real model, loaded once for the session (the process's shared encoder)."""
    enc = default_encoder()
    enc.encode(["load"])
    return enc
