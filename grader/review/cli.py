"""The verbs ``grade review OUT`` and ``grade regrade OUT STUDENT CHECK --reason …``.

``grade review OUT [--as NAME] [--port N] [--user NAME] [--rubric R]`` serves the review page on
127.0.0.1 and prints its URL (with the token it requires); ``--as`` names the instructor
in the audit trail (default: the login name, or sudo's user); ``--port`` picks the port
(default: any free one); ``--user`` is who to run as when started as root (default: the
owner of OUT); ``--rubric`` is the rubric OUT was graded with, whose written answers'
suggestions then learn from the marks (default: the rubric ``OUT/batch.json`` names,
when its SHA-256 is unchanged).

``grade regrade OUT STUDENT CHECK --reason TEXT [--as NAME]`` files a regrade request
(``OUT/regrades.yaml``); it then shows in the review page's regrade queue, where it is
resolved with a logged outcome.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

#: The verbs this module serves.
VERBS = ("review", "regrade")


def add_parser(verb: str) -> argparse.ArgumentParser:
    """The argument parser of ``verb``."""
    if verb == "review":
        parser = argparse.ArgumentParser(
            prog="grade review",
            description="Serve the instructor's review page for an output folder (written "
            "answers by question, anonymous; regrade requests; the dashboard) on 127.0.0.1.",
        )
        parser.add_argument("dir", type=Path, help="an output folder of `grade` (holding results/)")
        parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
        parser.add_argument(
            "--user",
            default=None,
            help="when started as root, serve as this user (default: the owner of DIR)",
        )
        parser.add_argument(
            "--rubric",
            default=None,
            help="the rubric DIR was graded with, for written answers' suggestions that "
            "learn from your marks (default: the one batch.json names, if unchanged)",
        )
    else:
        parser = argparse.ArgumentParser(
            prog="grade regrade",
            description="File a student's regrade request; resolve it in `grade review`.",
        )
        parser.add_argument("dir", type=Path, help="an output folder of `grade` (holding results/)")
        parser.add_argument("student", help="the student id (as in results/)")
        parser.add_argument("check", help="the check id (as in the rubric: Q1a)")
        parser.add_argument("--reason", required=True, help="the student's reason, as given")
    parser.add_argument(
        "--as",
        dest="who",
        default=None,
        help="the instructor's name in the audit trail (default: your login name)",
    )
    return parser


def run(verb: str, args: argparse.Namespace) -> int:
    """Run ``verb`` with its parsed arguments."""
    from grader.review.app import login_name

    who = args.who or login_name()
    if verb == "review":
        from grader.review.app import serve

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the review
            serve(
                args.dir,
                who=who,
                port=args.port,
                user=args.user,
                rubric=args.rubric,
                print_url=_say,
            )
        return 0
    from grader.review.app import ReviewSession, refresh_outputs
    from grader.review.audit import file_regrade

    session = ReviewSession(args.dir, who)
    regrade = file_regrade(args.dir, session.records(), args.student, args.check, args.reason, who)
    refresh_outputs(args.dir, [args.student])
    print(
        f"filed regrade request {regrade.id} for {regrade.student} {regrade.check} "
        f"(now {regrade.points_before:g} points); resolve it in `grade review {args.dir}`"
    )
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
