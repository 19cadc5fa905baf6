"""Generated HW3 batches for the benchmarks: the samples cycled to N, each byte-unique.

Shared by bench_regrade.py and bench_scaling.py (run from this folder's scripts, which
import it as a sibling module).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "submissions" / "hw3"


def build_batch(subs: Path, n: int, excluded: Collection[str]) -> None:
    """``n`` submissions cycled from the HW3 samples not in ``excluded`` (names without
    suffix), each notebook made byte-unique by a metadata field, so no two share a cached
    execution. A sample that is not JSON gets a line appended instead."""
    samples = sorted(p for p in SAMPLES.iterdir() if p.stem not in excluded)
    for i in range(n):
        sample = samples[i % len(samples)]
        name = f"s{i:03d}_{sample.stem}"
        if sample.is_dir():
            target = subs / name
            shutil.copytree(sample, target)
            notebooks = list(target.rglob("*.ipynb"))
        else:
            target = subs / f"{name}{sample.suffix}"
            shutil.copyfile(sample, target)
            notebooks = [target]
        for notebook in notebooks:
            try:
                data = json.loads(notebook.read_text())
            except ValueError:  # not_json: vary its bytes instead
                notebook.write_text(notebook.read_text() + f"\n{i}\n")
                continue
            data.setdefault("metadata", {})["bench_variant"] = i
            notebook.write_text(json.dumps(data, indent=1))
