"""Nothing of the course folder, the grader or the shipped ``reference/`` is readable in a
sandbox: with the grader installed from a wheel (non-editable), and in the dev set-up.

**Installed wheel.** A non-editable install puts ``grader/`` and ``reference/`` (the
answers) into the very site-packages every sandbox binds to run Python. The test builds
a wheel of this tree (``pip wheel --no-deps --no-build-isolation``, from a copy with
planted markers), makes a fresh venv (``python -m venv --without-pip``) and installs the
wheel into it with ``pip --python VENV install --no-deps --no-index``: the grader then
lives in that venv's site-packages exactly as on a course machine. The venv reaches the
heavy dependencies (torch, numpy, ipykernel) through a ``.pth`` file naming the dev
venv's site-packages, so nothing is downloaded or reinstalled (seconds, not minutes);
the grader binds that directory too, as it must for any ``.pth``-extended environment.
``grade`` then runs from the new venv (``python -I``: the working directory and
``PYTHONPATH`` are not on the path) on a small course whose rubric provides a data file;
the attacker's notebook walks the sandbox's whole file system, tries the course's
paths, the imports and the distribution's file list, and must find the provided data
and nothing else, and still be graded.

**Editable install** (the dev set-up): the source tree is never bound, and a notebook
finds none of it. Both need root, bubblewrap and a writable cgroup (as in CI).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.sandbox import (
    AnswerRequest,
    ExecutionLimits,
    ExecutionRequest,
    NotebookTask,
    ProvidedFile,
    SubmissionFiles,
    execute,
    warm,
)
from grader.sandbox.protections import detect_protections, python_paths
from tests.sandbox.leak_probe import probe_cell
from tests.sandbox.test_execute import notebook_bytes, use_warm

ROOT = Path(__file__).resolve().parents[2]
#: The dev set-up (scripts/install.sh) keeps its venv inside the source tree; binding the
#: venv shows nothing else of the tree (bwrap makes only the venv's parents, empty).
VENV = Path(sys.prefix).resolve()


def exposes_source_tree(path: Path) -> bool:
    """Whether binding ``path`` shows the project tree (beyond a venv inside it)."""
    if path == ROOT or path in ROOT.parents:
        return True
    return ROOT in path.parents and not (path == VENV or VENV in path.parents)


SECRET = f"LEAKMARK-{secrets.token_hex(6)}"
PUBLIC = f"PUBLICDATA-{secrets.token_hex(6)}"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not detect_protections().complete,
    reason="needs root, bubblewrap and a writable cgroup (as in CI)",
)


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    assert res.returncode == 0, f"{argv[:4]} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res  # type: ignore[no-any-return]


def _readable(top: Path) -> None:
    """uid 65534 must read the venv (as on a course machine): mkdtemp makes 0700."""
    for root, _dirs, files in os.walk(top):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A folder holding ``venv/`` with the grader's wheel installed (and ``src/``, the
    copy the wheel was built from, with a marker in every package's ``__init__``)."""
    base = Path(tempfile.mkdtemp(prefix="grader-wheel-", dir="/tmp"))
    try:
        src = base / "src"
        src.mkdir()
        shutil.copy(ROOT / "pyproject.toml", src)
        for package in ("grader", "reference"):
            shutil.copytree(
                ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__")
            )
            with (src / package / "__init__.py").open("a") as fh:
                fh.write(f"\n# {SECRET} {package}\n")
        py = sys.executable
        _run(
            [
                py,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--disable-pip-version-check",
                "--no-index",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(base / "dist"),
                str(src),
            ]
        )
        wheel = next((base / "dist").glob("grader-*.whl"))
        interpreter = (
            Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        )
        _run([str(interpreter), "-m", "venv", "--without-pip", str(base / "venv")])
        venv_py = base / "venv" / "bin" / "python"
        _run(
            [
                py,
                "-m",
                "pip",
                "--python",
                str(venv_py),
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-index",
                str(wheel),
            ]
        )
        site_packages = Path(
            _run(
                [
                    str(venv_py),
                    "-I",
                    "-c",
                    "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                ]
            ).stdout.strip()
        )
        (site_packages / "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        _readable(base)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _course(base: Path, known_extra: list[str]) -> tuple[Path, Path]:
    """A course folder (rubric, its own reference module, solution, provided data) and a
    submissions folder (the attacker and a bystander), both with markers."""
    course = base / "course"
    (course / "data").mkdir(parents=True)
    (course / "data" / "public.txt").write_text(PUBLIC)
    (course / "ref.py").write_text(
        f"# {SECRET} reference\ndef compute():\n    return {{'answer': 42, 'clean': 1}}\n"
    )
    (course / "solution").mkdir()
    (course / "solution" / "hw.ipynb").write_text(
        notebook_bytes([f"# {SECRET} solution\nanswer = 42"])
    )
    rubric = course / "leak.yaml"
    rubric.write_text(
        f"# {SECRET} rubric\n"
        "assignment: leak\ntitle: Leak\nreference: ref.py\nsolution: solution\n"
        "notebook: hw.ipynb\nfiles: [data/public.txt]\n"
        "limits: {cell_timeout: 60, notebook_timeout: 120}\n"
        "questions:\n  - id: q1\n    checks:\n"
        "      - {id: answer, type: value, answer: answer, points: 1}\n"
        "      - {id: clean, type: value, answer: clean, points: 1}\n"
    )
    subs = base / "submissions"
    (subs / "bystander").mkdir(parents=True)
    (subs / "bystander" / "hw.ipynb").write_text(
        notebook_bytes([f"# {SECRET} bystander\nanswer = 42\nclean = 1"])
    )
    known = [
        str(course),
        str(rubric),
        str(course / "ref.py"),
        str(course / "solution" / "hw.ipynb"),
        str(subs / "bystander" / "hw.ipynb"),
        str(ROOT / "reference" / "hw3.py"),
        str(ROOT / "rubrics" / "hw3.yaml"),
        str(ROOT / "pyproject.toml"),
        *known_extra,
    ]
    (subs / "attacker").mkdir()
    (subs / "attacker" / "hw.ipynb").write_text(
        notebook_bytes(["answer = 42", probe_cell(SECRET, PUBLIC, known)])
    )
    return rubric, subs


def test_an_installed_grader_shows_a_notebook_nothing_of_itself_or_the_course(
    installed: Path,
) -> None:
    venv_py = installed / "venv" / "bin" / "python"
    where = _run(
        [
            str(venv_py),
            "-I",
            "-c",
            "import grader, reference; print(grader.__file__); print(reference.__file__)",
        ],
        cwd=installed,
    ).stdout.split()
    site = installed / "venv" / "lib"
    assert all(site in Path(w).parents and "site-packages" in w for w in where), where
    installed_files = [str(Path(w).parent) for w in where]
    rubric, subs = _course(installed, [*installed_files, str(installed / "src")])
    out = installed / "out"
    env = {**os.environ, "GRADER_CACHE": str(installed / "cache")}
    _run(
        [
            str(venv_py),
            "-I",
            "-c",
            "import sys; from grader.cli import main; sys.exit(main(sys.argv[1:]))",
            str(subs),
            "--rubric",
            str(rubric),
            "--out",
            str(out),
            "--no-reports",
            "--quiet",
            "--jobs",
            "1",
        ],
        cwd=installed,
        env=env,
    )
    result = json.loads((out / "results" / "attacker.json").read_text())
    checks = {c["id"]: c for q in result["questions"] for c in q["checks"]}
    # nothing leaked, and the same walk found the provided file's marker
    assert checks["clean"]["status"] == "pass", checks["clean"]["message"]
    assert checks["answer"]["status"] == "pass"  # and it was graded
    assert result["score"] == result["max_score"] == 2
    assert result["provenance"]["provided_sha256"]
    bystander = json.loads((out / "results" / "bystander.json").read_text())
    assert bystander["score"] == 2


@pytest.fixture(scope="module", autouse=True)
def _close_template() -> Iterator[None]:
    yield
    warm.close_thread_template()


@pytest.mark.parametrize("path", ["cold", "warm"])
def test_the_dev_source_tree_is_neither_bound_nor_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    use_warm(monkeypatch, path == "warm")
    assert not any(exposes_source_tree(p) for p in python_paths())
    base = Path(tempfile.mkdtemp(prefix="grader-dev-", dir="/tmp"))
    try:
        # Not ROOT itself: the dev venv lives inside it, so the sandbox shows ROOT holding
        # only ``.venv`` (no file of the tree); what the tree holds must stay unseen.
        tree = [ROOT / "grader", ROOT / "submissions", ROOT / "grader" / "pipeline.py"]
        _rubric, subs = _course(base, [str(p) for p in tree])
        request = ExecutionRequest(
            files=SubmissionFiles(subs / "attacker", ("hw.ipynb",)),
            notebook=NotebookTask("hw.ipynb", harvest=(AnswerRequest("report"),)),
            provided=(ProvidedFile(base / "course" / "data" / "public.txt", "public.txt"),),
            limits=ExecutionLimits(cell_timeout=60),
        )
        got = execute(request)
        assert got.run is not None, got.problem
        assert got.run.answers["report"].value == "leaks=none;public=yes"
    finally:
        shutil.rmtree(base, ignore_errors=True)
