"""``grade data``: the grader's data cache (:mod:`grader.datasets`).

``grade data add NAME --from PATH [--cache DIR] [--replace]`` imports a file or folder
laid out as its loader keeps it; ``grade data list [--cache DIR]`` lists what is there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grader import datasets


def add_parser() -> argparse.ArgumentParser:
    """The parser of ``grade data``."""
    parser = argparse.ArgumentParser(
        prog="grade data",
        description="The grader's data cache: data sets a rubric's `datasets:` lets "
        "notebooks load offline (bound read-only at /grader-data/NAME).",
    )
    sub = parser.add_subparsers(
        dest="action", required=True, help="add: import a data set; list: show the cache"
    )
    add = sub.add_parser("add", help="import a data set from local files")
    add.add_argument("name", help="the name rubrics use in `datasets:` (mnist)")
    add.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        help="a file (mnist.npz) or a folder laid out as its loader keeps it "
        "(docs/guide/datasets.md)",
    )
    add.add_argument("--replace", action="store_true", help="replace a set of that name")
    listing = sub.add_parser("list", help="list the data sets of the cache")
    for p in (add, listing):
        p.add_argument(
            "--cache",
            type=Path,
            default=None,
            help="the data cache folder (default: $GRADER_DATA, else "
            "~/.local/share/grader/datasets)",
        )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``grade data add`` or ``grade data list``."""
    if args.action == "add":
        found = datasets.add(args.name, args.source, args.cache, replace=args.replace)
        print(f"added {found.name}: {found.files} file(s), {_size(found.bytes)} in {found.folder}")
        return 0
    sets = datasets.all_datasets(args.cache)
    root = datasets.cache_root(args.cache)
    if not sets:
        print(f"no data sets in {root}: add one with `grade data add NAME --from PATH`")
        return 0
    print(f"data sets in {root}:")
    for d in sets:
        print(f"  {d.name}  {d.files} file(s)  {_size(d.bytes)}  sha256 {d.sha256[:12]}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
