"""``python -m grader.review.render OUT``: re-render the reports of ``OUT`` whose record
changed, and the class summary, from ``results/`` and ``overrides.yaml``.

The review page runs this in a child process after decisions, so laying out PDFs never
holds the page's interpreter (its requests stay fast while reports render).
"""

from __future__ import annotations

import sys
from pathlib import Path


def render_reports(out_dir: Path) -> int:
    """Render what changed (:func:`grader.report.render.render_all`); returns how many
    student reports were rendered."""
    from grader.overrides import OVERRIDES_FILE, with_overrides
    from grader.report.render import render_all
    from grader.results import RESULTS_DIR, batch_warnings, read_results

    records = with_overrides(read_results(out_dir / RESULTS_DIR), out_dir / OVERRIDES_FILE)
    warning = "; ".join(batch_warnings(out_dir, records)) or None
    return len(render_all(records, out_dir, jobs=0, show_sandbox_warning=warning).rendered)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``OUT`` is the only argument; prints the count rendered."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m grader.review.render OUT", file=sys.stderr)
        return 2
    print(render_reports(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
