"""The ``grade new`` and ``grade assign`` verbs: their parsers and commands."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_new_parser() -> argparse.ArgumentParser:
    """``grade new NAME --course DIR``."""
    parser = argparse.ArgumentParser(
        prog="grade new",
        description="Write DIR/NAME/: a rubric, handout, reference, solution notebook, "
        "provided data and golden submissions to edit into your own assignment.",
    )
    parser.add_argument("name", help="the assignment's name (a Python identifier, e.g. hw5)")
    parser.add_argument(
        "--course", type=Path, required=True, help="the course folder to create NAME/ in"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing DIR/NAME/")
    return parser


def run_new(args: argparse.Namespace) -> int:
    """Write the skeleton and say what to do next."""
    from grader.authoring.new import new_assignment

    folder = new_assignment(args.name, args.course, force=args.force)
    rubric = folder / f"{args.name}.yaml"
    print(f"wrote {folder}")
    print(
        f"next: edit {rubric}, then `grade validate {rubric}` and "
        f"`grade assign {rubric} --out {folder / 'student'}`"
    )
    return 0


def add_assign_parser() -> argparse.ArgumentParser:
    """``grade assign RUBRIC --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="grade assign",
        description="Write the student version of the rubric's solution (solutions "
        "removed, provided files copied) and its public self-check, check.py.",
    )
    parser.add_argument("rubric", help="rubric path, or a name in rubrics/")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder to write the student version to"
    )
    return parser


def run_assign(args: argparse.Namespace) -> int:
    """Write the student version and say what the self-check holds."""
    from grader.authoring.assign import make_student_version

    made = make_student_version(args.rubric, args.out)
    print(
        f"wrote the student version to {made.out}: {len(made.files)} files; check.py runs "
        f"{made.form_checks} form check(s), {made.heading_checks} heading check(s) and "
        f"{made.function_cases} public function case(s) (no hidden expected values)"
    )
    return 0
