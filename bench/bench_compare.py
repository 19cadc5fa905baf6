"""Compare `grade` with a plain nbclient loop, nbgrader `autograde` and Otter on HW3.

Our grader is by default the committed one (``git archive HEAD`` into the work folder,
run with our venv's interpreter), so uncommitted edits in the tree do not get timed;
``--grader REV`` times another commit, ``--grader worktree`` times ``.venv/bin/grade`` as
the tree stands.

Run by hand from the project root (as root, for the strict sandbox)::

    .venv/bin/python bench/bench_compare.py [--n 100] [--jobs J] [--skip nbgrader,otter]
    .venv/bin/python bench/bench_compare.py --setup   # only create the tools' venvs

The batch is ``--n`` HW3 submissions built in a temporary folder from the well-behaved
samples of ``submissions/hw3`` (see WELL_BEHAVED; the samples that loop forever, kill
their kernel, raise in a cell or are not a notebook are left out: they would time our
time-outs and error paths, not the per-notebook overhead). Every copy gets a comment line
``# bench variant i`` in its first code cell, so every notebook hashes differently, and
our grader runs with a fresh ``--out`` folder and ``--force``.

Each tool processes the same N notebooks, timed wall-clock in this run:

1. ours: ``grade DIR --rubric hw3 --no-reports --force --quiet`` with ``--jobs J``
   (default: the cores) and with ``--jobs 1``, strict sandbox;
2. plain: one interpreter running ``NotebookClient(nb, kernel_name="python3").execute()``
   on every notebook in turn, a fresh kernel each (our venv, no sandbox, no grading);
3. nbgrader: ``nbgrader autograde hw3`` over the whole course (its batch command,
   sequential), in its own venv; the course (source notebook with autograded test cells,
   ``generate_assignment``, students in the gradebook, ``submitted/<id>/hw3/hw3.ipynb``)
   is built before the clock starts;
4. otter: ``otter run -a autograder.zip NOTEBOOK`` once per submission, in turn (no
   Docker), in its own venv; the autograder zip is made by ``otter generate`` from
   OK-format tests before the clock starts.

nbgrader and Otter check a few of the HW3 answers (Q2's four values, Q3's total, Q6's
shape and parameter count) with plain asserts / doctests; our grader runs the whole
rubric (value, shape-table, model-probe and text checks) in the sandbox.

The venvs live in ~/.cache/grader-bench/{nbgrader,otter}-venv (python3.11, torch 2.13.0
from /opt/wheels, numpy, the tool from the package registry); they are created before any
timing, once (a marker file records a finished install). Before the clock starts every
tool is warmed up: its venv's interpreter imports torch (file cache) and our grader
grades one extra submission (reference values cached, as in any batch after the first).
Prints a table (tool, N, total s, s/submission, ratio tool / ours) and the load average
at start and end.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "submissions" / "hw3"
VENV = ROOT / ".venv"
CACHE = Path.home() / ".cache" / "grader-bench"
PYTHON = "/usr/bin/python3.11"
WHEELS = "/opt/wheels"
TORCH = "torch==2.13.0"
TOOLS = ("ours", "ours1", "plain", "nbgrader", "otter")

# Samples that run start to end in a few seconds (wrong answers are fine). Left out:
# infinite_loop (30 s cell time-out), kernel_dies (os._exit), crash_in_cell (NameError:
# nbclient's default stops there), not_json / no_notebook (no notebook to run),
# misnamed_file (a copy of solution under another file name).
WELL_BEHAVED = (
    "solution",
    "ansari_seed",
    "param_not_times_filters",
    "transposed_gradient",
    "pool_ceil",
    "channels_first_and_no_cat",
    "unsupported_types",
    "lms_single_file.ipynb",
)

# The answers nbgrader and Otter check (from reference/hw3.py).
CHECKS = {
    "q2": [
        "np.allclose(np.asarray(q2_O, dtype=float), [[1, 2], [-10, 8]])",
        "np.isclose(float(q2_G), 0.25)",
        "np.allclose(np.asarray(q2_dL_dX, dtype=float), "
        "[[0.5, 0.5, 0], [-0.25, 0, 0.25], [-0.75, -0.5, 0.25]])",
        "np.allclose(np.asarray(q2_dL_dF, dtype=float), [[2.5, 1.75], [1.25, -1]])",
    ],
    "q3": ["int(q3_total_params) == 497349"],
    "q6": ["tuple(q6_output_shape) == (28, 28, 32)", "int(q6_params) == 2080"],
}
POINTS = {"q2": 20, "q3": 2, "q6": 4}

VENVS = {
    "nbgrader": (CACHE / "nbgrader-venv", ["nbgrader", "numpy", TORCH]),
    "otter": (CACHE / "otter-venv", ["otter-grader", "ipykernel", "numpy", TORCH]),
}


# --------------------------------------------------------------------------------------
# Set-up (never timed)
# --------------------------------------------------------------------------------------


def ensure_venv(tool: str) -> Path:
    """The tool's venv, created and installed once (idempotent: a marker file)."""
    venv, packages = VENVS[tool]
    marker = venv / ".bench-installed"
    wanted = " ".join(packages)
    if marker.exists() and marker.read_text() == wanted:
        return venv
    if not (venv / "bin" / "python").exists():
        print(f"setup: creating {venv}", flush=True)
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
    print(f"setup: pip install {wanted} into {venv}", flush=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--find-links", WHEELS, *packages], check=True)
    marker.write_text(wanted)
    return venv


# Set by --baseline-threads: OMP/MKL thread counts for the baselines' kernels (ours set 1).
BASELINE_ENV: dict[str, str] = {}


def activated(venv: Path) -> dict[str, str]:
    """The environment of an activated venv (nbgrader runs ``alembic`` from PATH)."""
    env = dict(os.environ, VIRTUAL_ENV=str(venv), **BASELINE_ENV)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def tool_version(venv: Path, dist: str) -> str:
    code = f"from importlib.metadata import version; print(version({dist!r}))"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True)
    return out.stdout.decode().strip() or "?"


def load_notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def sample_notebook(name: str) -> dict:
    path = SAMPLES / name
    if path.is_dir():
        return load_notebook(path / "hw3.ipynb")
    return load_notebook(path)


def varied(nb: dict, i: int) -> dict:
    """A copy with ``# bench variant i`` on top of its first code cell."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            cell["source"] = f"# bench variant {i}\n{text}"
            break
    nb.setdefault("metadata", {})["bench_variant"] = i
    return nb


def build_batch(dest: Path, n: int) -> dict[str, dict]:
    """``dest/<student>/hw3.ipynb`` for n students cycled over WELL_BEHAVED."""
    samples = {name: sample_notebook(name) for name in WELL_BEHAVED}
    students = {}
    for i in range(n):
        name = WELL_BEHAVED[i % len(WELL_BEHAVED)]
        student = f"s{i:03d}_{Path(name).stem}"
        nb = varied(samples[name], i)
        (dest / student).mkdir(parents=True)
        (dest / student / "hw3.ipynb").write_text(json.dumps(nb, indent=1))
        students[student] = nb
    return students


def code_cell(source: str, cell_id: str, metadata: dict | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": cell_id,
        "metadata": metadata or {},
        "outputs": [],
        "source": source,
    }


def nbgrader_test_cells() -> list[dict]:
    cells = []
    for question, checks in CHECKS.items():
        source = "import numpy as np\n" + "".join(f"assert {check}\n" for check in checks)
        meta = {
            "nbgrader": {
                "grade": True,
                "grade_id": f"test_{question}",
                "locked": True,
                "points": POINTS[question],
                "schema_version": 3,
                "solution": False,
                "task": False,
            }
        }
        cells.append(code_cell(source, f"bench-test-{question}", meta))
    return cells


def build_nbgrader_course(
    course: Path, venv: Path, students: dict[str, dict], log: Path
) -> list[str]:
    """Course layout, gradebook, released notebook and submissions; returns the command."""
    bin_ = venv / "bin"
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        textwrap.dedent(
            f"""\
            c = get_config()
            c.CourseDirectory.root = {str(course)!r}
            c.CourseDirectory.course_id = "hw3bench"
            """
        )
    )
    solution = sample_notebook("solution")
    source = copy.deepcopy(solution)
    source["cells"] += nbgrader_test_cells()
    (course / "source" / "hw3").mkdir(parents=True)
    (course / "source" / "hw3" / "hw3.ipynb").write_text(json.dumps(source, indent=1))
    with (course / "students.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "first_name", "last_name", "email"])
        for student in students:
            writer.writerow([student, student, "Bench", f"{student}@example.org"])
    nbgrader = str(bin_ / "nbgrader")
    with log.open("a") as out:
        for command in (
            [nbgrader, "db", "assignment", "add", "hw3"],
            [nbgrader, "db", "student", "import", "students.csv"],
            [nbgrader, "generate_assignment", "hw3", "--force"],
        ):
            subprocess.run(
                command, cwd=course, env=activated(venv), stdout=out, stderr=out, check=True
            )
    released = load_notebook(course / "release" / "hw3" / "hw3.ipynb")
    tests = [c for c in released["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    if len(tests) != len(CHECKS):
        raise RuntimeError(f"release notebook has {len(tests)} test cells, not {len(CHECKS)}")
    for student, nb in students.items():
        submitted = copy.deepcopy(nb)
        submitted["cells"] += copy.deepcopy(tests)  # the student filled in the release
        folder = course / "submitted" / student / "hw3"
        folder.mkdir(parents=True)
        (folder / "hw3.ipynb").write_text(json.dumps(submitted, indent=1))
        (folder / "timestamp.txt").write_text("2026-11-22 12:00:00.000000 UTC")
    return [nbgrader, "autograde", "hw3"]


def build_otter_autograder(work: Path, venv: Path, log: Path) -> Path:
    """``otter generate`` on OK-format tests; returns the autograder zip."""
    tests = work / "tests"
    tests.mkdir(parents=True)
    for question, checks in CHECKS.items():
        cases = [
            {
                "code": f">>> import numpy as np\n>>> bool({check})\nTrue",
                "hidden": False,
                "locked": False,
            }
            for check in checks
        ]
        test = {
            "name": question,
            "points": POINTS[question],
            "suites": [
                {
                    "cases": cases,
                    "scored": True,
                    "setup": "",
                    "teardown": "",
                    "type": "doctest",
                }
            ],
        }
        (tests / f"{question}.py").write_text(f"OK_FORMAT = True\n\ntest = {test!r}\n")
    with log.open("a") as out:
        subprocess.run(
            [
                str(venv / "bin" / "otter"),
                "generate",
                "-t",
                str(tests),
                "-o",
                str(work / "autograder.zip"),
            ],
            cwd=work,
            env=activated(venv),
            stdout=out,
            stderr=out,
            check=True,
        )
    return work / "autograder.zip"


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    tool: str
    n: int
    seconds: float | None = None
    note: str = ""
    loads: list[float] = field(default_factory=list)


def run_logged(
    command: list[str], log: Path, cwd: Path | None = None, venv: Path | None = None
) -> int:
    env = activated(venv) if venv else None
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        return subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=out).returncode


def timed(label: str, n: int, body) -> Row:
    row = Row(label, n)
    before = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')}] {label}: {n} submissions ...", flush=True)
    started = time.monotonic()
    try:
        row.note = body() or ""
        row.seconds = time.monotonic() - started
    except Exception as error:  # a tool that fails is reported, the others still run
        row.note = f"FAILED: {error}"
    row.loads = [before, os.getloadavg()[0]]
    took = f"{row.seconds:.1f} s" if row.seconds is not None else "-"
    print(f"    {took}, load {before:.2f} -> {row.loads[1]:.2f}; {row.note}", flush=True)
    return row


PLAIN_LOOP = """
import sys, nbformat
from nbclient import NotebookClient
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=300).execute()
print(len(sys.argv) - 1, "executed")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip", default="", help=f"comma-separated, of {', '.join(TOOLS)}")
    parser.add_argument("--setup", action="store_true", help="create the venvs and stop")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--grader",
        default="HEAD",
        metavar="REV",
        help="a commit (default HEAD): that commit's grader (git archive, run with our "
        "venv); worktree: .venv/bin/grade on the working tree as it is",
    )
    parser.add_argument(
        "--baseline-threads",
        type=int,
        help="OMP_NUM_THREADS and MKL_NUM_THREADS for the plain, nbgrader and Otter kernels "
        "(default: unset, as a naive run; our kernels always run with 1)",
    )
    args = parser.parse_args()
    if args.baseline_threads:
        threads = str(args.baseline_threads)
        BASELINE_ENV.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools in --skip: {', '.join(sorted(unknown))}")

    venvs = {tool: ensure_venv(tool) for tool in VENVS if args.setup or tool not in skip}
    if args.setup:
        for tool, venv in venvs.items():
            print(f"{tool}: {venv} ready")
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "tools.log"
    n = args.n
    subs = work / "subs"
    students = build_batch(subs, n)
    paths = [str(subs / s / "hw3.ipynb") for s in students]

    # untimed set-up of the baselines' inputs
    nbgrader_cmd = otter_zip = None
    if "nbgrader" not in skip:
        nbgrader_cmd = build_nbgrader_course(work / "course", venvs["nbgrader"], students, log)
    if "otter" not in skip:
        otter_zip = build_otter_autograder(work / "otter", venvs["otter"], log)

    # warm-up (untimed): file cache for every interpreter and torch, our reference values
    for venv in [VENV, *venvs.values()]:
        subprocess.run([str(venv / "bin" / "python"), "-c", "import torch, nbclient"], check=True)
    warm = work / "warm"
    shutil.copytree(subs / next(iter(students)), warm / "w000")
    grade, grader_desc = grader_command(args.grader, work)
    run_logged(
        [
            *grade,
            str(warm),
            "--rubric",
            "hw3",
            "--out",
            str(work / "out-warm"),
            "--no-reports",
            "--force",
            "--quiet",
        ],
        log,
    )

    start_load = os.getloadavg()
    print(
        f"{platform.node()}: {os.cpu_count()} cores, {cpu_model()}; {n} submissions from "
        f"{len(WELL_BEHAVED)} samples; our grader: {grader_desc}; work folder {work}",
        flush=True,
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in start_load)}", flush=True)
    if BASELINE_ENV:
        print(f"baseline kernels with {BASELINE_ENV}", flush=True)
    rows: list[Row] = []

    def ours(jobs: int):
        def body() -> str:
            out = work / f"out-j{jobs}"
            command = [*grade, str(subs), "--rubric", "hw3", "--out", str(out)]
            command += ["--no-reports", "--jobs", str(jobs), "--force", "--quiet"]
            done = subprocess.run(command, capture_output=True, text=True)
            with log.open("a") as handle:
                handle.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")
            if done.returncode:
                raise RuntimeError(f"grade exited {done.returncode}: {done.stderr[-300:]}")
            totals = gradebook_totals(out / "gradebook.csv")
            not_run = done.stderr.count("(not run)")
            if len(totals) != n or not_run:
                raise RuntimeError(f"{len(totals)} of {n} graded, {not_run} not run; see {log}")
            return f"{len(totals)} graded, mean total {sum(totals) / n:.1f}/90"

        return body

    if "ours" not in skip:
        rows.append(timed(f"ours (grade --jobs {args.jobs})", n, ours(args.jobs)))
    if "ours1" not in skip and args.jobs != 1:
        rows.append(timed("ours (grade --jobs 1)", n, ours(1)))

    if "plain" not in skip:

        def plain() -> str:
            command = [str(VENV / "bin" / "python"), "-c", PLAIN_LOOP, *paths]
            env = dict(os.environ, **BASELINE_ENV)
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode:
                raise RuntimeError(done.stderr[-300:])
            return done.stdout.strip()

        rows.append(timed("plain nbclient loop", n, plain))

    if nbgrader_cmd:

        def nbgrader() -> str:
            code = run_logged(nbgrader_cmd, log, cwd=work / "course", venv=venvs["nbgrader"])
            graded = list((work / "course" / "autograded").glob("*/hw3/hw3.ipynb"))
            if code or len(graded) != n:
                raise RuntimeError(f"exit {code}, {len(graded)} of {n} autograded; see {log}")
            with sqlite3.connect(work / "course" / "gradebook.db") as db:
                total = db.execute("select sum(auto_score) from grade").fetchone()[0] or 0
            return f"{len(graded)} autograded, mean score {total / n:.1f}/{sum(POINTS.values())}"

        label = f"nbgrader {tool_version(venvs['nbgrader'], 'nbgrader')} autograde"
        rows.append(timed(label, n, nbgrader))

    if otter_zip:

        def otter() -> str:
            otter_bin = str(venvs["otter"] / "bin" / "otter")
            scores = []
            for student in students:
                out = work / "otter-out" / student
                out.mkdir(parents=True)
                nb = subs / student / "hw3.ipynb"
                command = [otter_bin, "run", "-a", str(otter_zip), "-o", str(out), str(nb)]
                code = run_logged(command, log, venv=venvs["otter"])
                results = out / "results.json"
                if code or not results.exists():
                    raise RuntimeError(f"otter run exited {code} on {student}; see {log}")
                scores.append(otter_score(results))
            mean = sum(scores) / len(scores)
            return f"{len(scores)} results, mean score {mean:.1f}/{sum(POINTS.values())}"

        label = f"otter-grader {tool_version(venvs['otter'], 'otter-grader')} run"
        rows.append(timed(label, n, otter))

    end_load = os.getloadavg()
    report(rows, n, start_load, end_load)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def grader_command(which: str, work: Path) -> tuple[list[str], str]:
    """The ``grade`` command to time: the committed tree's or the working tree's."""
    rev = "HEAD" if which == "worktree" else which
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True
    ).stdout.strip()
    if which == "worktree":
        return [str(VENV / "bin" / "grade")], f"working tree (HEAD {head} + local edits)"
    tree = work / "grader-head"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", head], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    python = str(VENV / "bin" / "python")
    # env(1) puts the exported tree first on the path, ahead of the editable install
    return ["env", f"PYTHONPATH={tree}", python, "-m", "grader.cli"], f"commit {head}"


def gradebook_totals(path: Path) -> list[float]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [float(row["total"]) for row in csv.DictReader(handle)]


def otter_score(results: Path) -> float:
    data = json.loads(results.read_text())
    return float(sum(test.get("score") or 0 for test in data.get("tests", [])))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(rows: list[Row], n: int, start_load, end_load) -> None:
    base = next((r.seconds for r in rows if r.tool.startswith("ours") and r.seconds), None)
    base1 = next((r.seconds for r in rows if r.tool == "ours (grade --jobs 1)"), None)
    print()
    header = f"| {'tool':<40} | {'N':>4} | {'total s':>8} | {'s/sub':>6} | {'ratio':>6} |"
    header += f" {'ratio j1':>8} | {'load':>11} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for row in rows:
        if row.seconds is None:
            print(
                f"| {row.tool:<40} | {n:>4} | {'-':>8} | {'-':>6} | {'-':>6} | {'-':>8} | "
                f"{'-':>11} |  {row.note}"
            )
            continue
        ratio = f"{row.seconds / base:.2f}" if base else "-"
        ratio1 = f"{row.seconds / base1:.2f}" if base1 else "-"
        load = f"{row.loads[0]:.1f}-{row.loads[1]:.1f}"
        print(
            f"| {row.tool:<40} | {n:>4} | {row.seconds:>8.1f} | {row.seconds / n:>6.2f} | "
            f"{ratio:>6} | {ratio1:>8} | {load:>11} |"
        )
    print()
    print("ratio = tool / ours (first ours row); ratio j1 = tool / ours --jobs 1")
    for row in rows:
        if row.note:
            print(f"  {row.tool}: {row.note}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in start_load)}")
    print(f"load average at end:   {' '.join(f'{x:.2f}' for x in end_load)}")
    print(f"python {sys.version.split()[0]}, {platform.platform()}")


if __name__ == "__main__":
    main()
