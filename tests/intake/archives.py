"""Small LMS downloads built in the tests, in each LMS's real naming."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

#: a zip entry's stored time: (year, month, day, hour, minute, second)
When = tuple[int, int, int, int, int, int]
ON_TIME: When = (2026, 9, 15, 12, 0, 0)


def write_zip(path: Path, entries: Mapping[str, bytes], times: Mapping[str, When] = {}) -> Path:
    """A zip with ``entries`` (name → bytes), each stamped with ``times`` or ON_TIME."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=times.get(name, ON_TIME)), data)
    return path


def write_tree(root: Path, files: Mapping[str, bytes]) -> Path:
    """A folder holding ``files`` (relative path → bytes)."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
