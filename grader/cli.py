"""The ``grade`` command: argument parsing and messages only; the work is elsewhere.

``grade SUBMISSIONS --rubric R [--out DIR]`` grades (the default verb);
``grade validate R`` checks a rubric and that its solution earns full marks;
``grade report DIR`` re-renders reports from results on disk;
``grade export DIR --format canvas|moodle|csv|moodle-feedback|canvas-feedback`` writes an
LMS gradebook or feedback files; ``grade review DIR`` serves the instructor's review page
and ``grade regrade DIR STUDENT CHECK --reason …`` files a regrade request
(:mod:`grader.review.cli`);
``grade new NAME --course DIR`` and ``grade assign RUBRIC --out DIR`` serve assignment
authors (:mod:`grader.authoring.cli`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import GraderError
from grader.intake.records import LAYOUTS

if TYPE_CHECKING:  # the verbs import what they use, so `grade --help` stays fast
    from grader.models import GradeRecord

VERBS = ("validate", "report", "export", "review", "regrade", "new", "assign", "data")


def _grade_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade",
        description="Grade a folder of submissions against a rubric. Other verbs: "
        "grade validate RUBRIC | grade report DIR | grade export DIR --format canvas | "
        "grade review DIR | grade regrade DIR STUDENT CHECK --reason TEXT",
    )
    parser.add_argument(
        "submissions",
        type=Path,
        help="folder with one sub-folder (or file) per student, or an LMS download (folder "
        "or .zip from Canvas, Moodle, Gradescope or GitHub Classroom)",
    )
    parser.add_argument(
        "--layout",
        choices=list(LAYOUTS),
        default=None,
        help="read SUBMISSIONS as this layout (default: detected from its marker)",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="roster CSV (columns id,name,email,sis_id,login_id,section,extension_hours; or "
        "Canvas's gradebook export or Moodle's grading worksheet as downloaded): names, SIS "
        "ids, extensions; a zero row for each student with no submission",
    )
    parser.add_argument("--rubric", required=True, help="rubric path, or a name in rubrics/ (hw3)")
    parser.add_argument(
        "--out", type=Path, default=Path("graded"), help="output folder (default ./graded)"
    )
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=default_jobs(),
        help=f"submissions graded at once (default: this machine's cores, {default_jobs()})",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="run the submissions on a Dask distributed cluster (tcp://scheduler:8786; needs "
        "the `cluster` extra, and the same grader installed on every worker); --jobs then "
        "only sets the report processes",
    )
    parser.add_argument(
        "--gpus",
        type=_gpus,
        default=0,
        metavar="all|N",
        help="lend this machine's NVIDIA GPUs (whole GPUs or MIG instances, one per "
        "concurrent job; --jobs is lowered to their number) to a rubric that declares "
        "`devices: gpu` (default 0: no GPU is exposed)",
    )
    parser.add_argument("--no-reports", action="store_true", help="skip the PDF reports")
    parser.add_argument(
        "--force",
        action="store_true",
        help="ignore the cache of earlier runs in the output folder: execute and score all",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final line and errors")
    _sandbox_option(parser)
    _compare_option(parser)
    return parser


def _compare_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare-with",
        metavar="OLD_OUT",
        type=Path,
        action="append",
        default=[],
        help="also compare with an earlier batch's output folder (its similarity-index.json); "
        "its students appear as <batch>/<id> in similarity.csv (repeatable)",
    )


def default_jobs() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _gpus(text: str) -> int | None:
    # None: all of this machine's GPUs
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be `all` or a number of GPUs") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be `all` or a number of GPUs")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _sandbox_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox",
        choices=["strict", "permissive", "off"],
        default="strict",
        help="strict (default): refuse to run student code without every protection; "
        "permissive: run with what this machine allows and say what is off in every "
        "result; off: no sandbox (trusted code only)",
    )


def _validate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grade validate", description="Check a rubric.")
    parser.add_argument("rubric", help="rubric path, or a name in rubrics/")
    _sandbox_option(parser)
    return parser


def _report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade report",
        description="Re-render reports from results on disk (runs no student code).",
    )
    parser.add_argument("dir", type=Path, help="an output folder of `grade` (holding results/)")
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=default_jobs(),
        help=f"reports rendered at once (default: this machine's cores, {default_jobs()})",
    )
    _compare_option(parser)
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grade export", description="Write an LMS gradebook.")
    parser.add_argument("dir", type=Path, help="an output folder of `grade` (holding results/)")
    parser.add_argument(
        "--format",
        choices=list(EXPORTS),
        required=True,
        help="what to write: an LMS gradebook (canvas, moodle), every check's points (csv), "
        "or the PDF reports as the LMS takes feedback files (moodle-feedback, canvas-feedback)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="output path (default DIR/" + ", DIR/".join(EXPORTS.values()) + " by format)",
    )
    parser.add_argument(
        "--column",
        default=None,
        help='canvas: the exact name of an existing Canvas column, e.g. "HW3 (12345)" '
        "(default: the assignment's title, which Canvas imports as a new column)",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="roster CSV whose names and SIS ids fill the export (see `grade --help`)",
    )
    return parser


#: Each export format and its default output under DIR.
EXPORTS = {
    "canvas": "canvas.csv",
    "moodle": "moodle-worksheet.csv",
    "csv": "checks.csv",
    "moodle-feedback": "moodle-feedback.zip",
    "canvas-feedback": "canvas-feedback",
}


def cmd_grade(args: argparse.Namespace) -> int:
    """Grade a batch, then render reports."""
    from grader.batch import grade_batch
    from grader.progress import make_reporter
    from grader.rubric import load_rubric

    rubric = load_rubric(args.rubric)
    jobs = args.jobs
    if args.gpus != 0:
        from grader.batch import lend_gpus

        if args.cluster is not None:
            raise GraderError(
                "--gpus lends this machine's GPUs; with --cluster the workers run the "
                "submissions: drop one of them (GPU workers are not supported yet)"
            )

        jobs = lend_gpus(rubric, args.gpus, args.jobs, log=print)
    _check_compare_with(args.compare_with, args.out)
    roster = None
    if args.roster is not None:
        from grader.roster import load_roster

        roster = load_roster(args.roster)
    live = None
    if not args.no_reports:
        from grader.report.live import LiveReports

        live = LiveReports(args.out, args.jobs)
    try:
        batch = grade_batch(
            args.submissions,
            rubric,
            args.out,
            jobs=jobs,
            sandbox=args.sandbox,
            force=args.force,
            reporter=make_reporter("quiet" if args.quiet else "auto"),
            cluster=args.cluster,
            on_result=live,
            layout=args.layout,
            roster=roster,
            compare_with=args.compare_with,
        )
    finally:
        if live is not None:
            live.close()
    if not args.no_reports:
        from grader.report.render import render_all

        render_all(
            batch.graded, args.out, jobs=args.jobs, show_sandbox_warning=batch.batch.sandbox_warning
        )
    counts = batch.counts
    how = (
        f" ({counts.get('executed', 0)} executed, {counts.get('rescored', 0)} re-scored from "
        f"cached runs, {counts.get('cached', 0)} unchanged)"
    )
    missing = counts.get("missing", 0)
    graded = len(batch.records) - missing
    print(
        f"graded {graded} submissions{how}"
        + (f", {missing} roster student(s) with no submission (zero rows)" if missing else "")
        + f" → {args.out}/results, {args.out}/gradebook.csv"
        + ("" if args.no_reports else f", {args.out}/reports")
    )
    print(_totals_line(batch.records, batch.graded))
    return 0


def _totals_line(records: list[GradeRecord], graded: list[GradeRecord]) -> str:
    """The console's last line: which total the lines above and gradebook.csv show."""
    late = sum(1 for r in records if r.late is not None and r.late.get("penalty"))
    changed = sum(1 for a, b in zip(records, graded, strict=True) if a.score != b.score)
    parts = ["totals in results/ and above: automatic marks"]
    if late:
        parts.append(f"less late penalties ({late} student(s))")
    tail = (
        f"; gradebook.csv also applies overrides.yaml ({changed} total(s) differ)"
        if changed
        else "; gradebook.csv shows the same totals"
    )
    return " ".join(parts) + tail


def _check_compare_with(folders: Sequence[Path], out: Path) -> None:
    """Each ``--compare-with`` folder holds a fingerprint index and is not the output
    folder itself, before any work starts."""
    from grader.integrity.similarity import INDEX_FILE

    for folder in folders:
        if folder.resolve() == out.resolve():
            raise GraderError(
                f"--compare-with {folder} is the output folder itself: name an earlier "
                "batch's output folder"
            )
        if not (folder / INDEX_FILE).is_file():
            raise GraderError(
                f"--compare-with {folder}: no {INDEX_FILE} there; give an output folder of "
                "`grade` run with this grader (or run `grade` on that batch again)"
            )


def cmd_validate(args: argparse.Namespace) -> int:
    """Schema, reference computable, solution earns full marks on automatic checks."""
    from grader.validate import validate_rubric

    problems = validate_rubric(args.rubric, sandbox=args.sandbox, log=print)
    for problem in problems:
        print(f"FAIL {problem}")
    print("rubric OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


def _load_records(out_dir: Path) -> list[GradeRecord]:
    """The results in ``out_dir/results`` with the instructor's overrides applied."""
    from grader.overrides import OVERRIDES_FILE, with_overrides
    from grader.results import RESULTS_DIR, read_results

    results_dir = out_dir / RESULTS_DIR
    if not results_dir.is_dir():
        raise GraderError(f"{results_dir}: no results folder (run `grade` first)")
    records = read_results(results_dir)
    if not records:
        raise GraderError(f"{results_dir}: holds no results")
    return with_overrides(records, out_dir / OVERRIDES_FILE)


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render every report and the summary from results on disk, and the gradebook
    (the overrides may have changed since the batch)."""
    from grader.gradebook import write_gradebook
    from grader.report.render import render_all
    from grader.results import batch_warnings

    _check_compare_with(args.compare_with, args.dir)
    records = _load_records(args.dir)
    from grader.integrity.run import similarity_from_index

    try:
        similarity_from_index(args.dir, args.compare_with)  # the summary shows it
    except GraderError as exc:  # an index of another grader: the reports still render
        print(f"warning: similarity not compared again: {exc}", file=sys.stderr)
    warning = "; ".join(batch_warnings(args.dir, records)) or None
    paths = render_all(records, args.dir, jobs=args.jobs, show_sandbox_warning=warning)
    write_gradebook(records, args.dir / "gradebook.csv")
    from grader.review import after_grading

    after_grading(args.dir, records)  # review sections and index.html
    pdfs = [p for p in paths if p.suffix == ".pdf"]
    print(f"rendered {len(pdfs)} PDF files and the gradebook in {args.dir}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write an LMS gradebook or feedback files; warn about unreviewed manual checks."""
    from grader import feedback, gradebook

    records = _load_records(args.dir)
    # overrides may have changed since the batch: gradebook.csv follows them
    gradebook.write_gradebook(records, args.dir / "gradebook.csv")
    if args.roster is not None:
        from grader.lms import with_roster
        from grader.roster import load_roster

        entries = load_roster(args.roster).by_id()
        records = [with_roster(r, entries.get(r.student)) for r in records]
    out = args.output or args.dir / EXPORTS[args.format]
    # Feedback files too: their reports would tell students a mark is still awaited.
    warning = gradebook.unreviewed_warning(records)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if args.format == "canvas":
        gradebook.export_canvas(records, out, column=args.column)
    elif args.format == "moodle":
        gradebook.export_moodle(records, out)
    elif args.format == "csv":
        gradebook.export_plain(records, out)
    else:
        write = (
            feedback.moodle_feedback_zip
            if args.format == "moodle-feedback"
            else feedback.canvas_feedback_folder
        )
        count, missing = write(records, args.dir, out)
        if missing:
            print(
                f"warning: no report for {len(missing)} student(s) ({', '.join(missing[:10])}); "
                f"run `grade report {args.dir}` first",
                file=sys.stderr,
            )
        print(f"wrote {count} feedback file(s) to {out}")
        return 0
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``grade`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] in VERBS:
            verb, rest = args_list[0], args_list[1:]
            if verb in ("review", "regrade"):  # grader/review/cli.py
                from grader.review import cli as review_cli

                return review_cli.run(verb, review_cli.add_parser(verb).parse_args(rest))
            if verb == "data":  # grader/datasets_cli.py
                from grader import datasets_cli

                return datasets_cli.run(datasets_cli.add_parser().parse_args(rest))
            if verb in ("new", "assign"):
                from grader.authoring import cli as authoring

                make, run = {
                    "new": (authoring.add_new_parser, authoring.run_new),
                    "assign": (authoring.add_assign_parser, authoring.run_assign),
                }[verb]
                return run(make().parse_args(rest))
            parser = {
                "validate": _validate_parser,
                "report": _report_parser,
                "export": _export_parser,
            }[verb]()
            args = parser.parse_args(rest)
            return {"validate": cmd_validate, "report": cmd_report, "export": cmd_export}[verb](
                args
            )
        return cmd_grade(_grade_parser().parse_args(args_list))
    except GraderError as exc:
        one_line = " ".join(str(exc).split())  # a kernel log may span lines
        print(f"grade: error: {one_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grade: interrupted; finished results are kept in results/", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
