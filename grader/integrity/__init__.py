"""Integrity findings for the instructor, never changing a score: similarity across a
batch (and with earlier batches), and cells of the student version that a submission
changed.

Public entry points (imported lazily, so the rubric can import the settings alone):

- :func:`grader.integrity.run.similarity_for_batch` / ``similarity_from_index``: the
  similarity stage of ``grade`` and ``grade report``;
- :func:`grader.integrity.similarity.similarity_section`: the batch's similarity as plain
  data for the summary and the dashboard;
- :mod:`grader.integrity.given`: given cells, checked and optionally restored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def similarity_section(out_dir: Path) -> dict[str, Any] | None:
    """The batch's similarity as plain data (see
    :func:`grader.integrity.similarity.similarity_section`)."""
    from grader.integrity.similarity import similarity_section as section

    return section(out_dir)


__all__ = ["similarity_section"]
