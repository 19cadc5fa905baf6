"""Instructor-provided files (a rubric's ``files:``) in the sandbox: cold, warm and copied.

Each run reads the provided files from inside the student's code, tries to change them,
and has a student file of the same name shadowed (or, when replaceable, used). Cold and
warm need root, bubblewrap and a writable cgroup (as in CI); the copy (``--sandbox=off``)
runs everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.errors import SandboxError
from grader.sandbox import (
    AnswerRequest,
    Call,
    ExecutionLimits,
    ExecutionRequest,
    ModuleTask,
    NotebookTask,
    ProvidedFile,
    execute,
    warm,
)
from grader.sandbox.protections import detect_protections
from grader.sandbox.provided import place_provided, target_path
from grader.sandbox.records import Mode
from tests.sandbox.test_execute import folder, notebook_bytes, use_warm

CONFINED = os.geteuid() == 0 and detect_protections().complete
needs_confined = pytest.mark.skipif(not CONFINED, reason="needs root, bwrap and cgroups (CI)")
LIMITS = ExecutionLimits(cell_timeout=30, interrupt_grace=3, harvest_timeout=30)
PATHS = [
    pytest.param("cold", marks=needs_confined),
    pytest.param("warm", marks=needs_confined),
    "off",
]

CELLS = [
    "tokens = open('data/tokens.txt').read()",
    "import helpers.tool as tool\nhelper = tool.VALUE",
    "config = open('config.txt').read()",
    # Every way of changing a provided file; each error's name is collected.
    """
import os, shutil
errors = []
for attempt in (
    lambda: open('data/tokens.txt', 'w').write('forged'),
    lambda: open('data/tokens.txt', 'a').write('forged'),
    lambda: os.remove('data/tokens.txt'),
    lambda: os.rename('data/tokens.txt', 'moved.txt'),
    lambda: open('helpers/tool.py', 'w').write('VALUE = 0'),
    lambda: open('helpers/new.py', 'w').write('x = 1'),
    lambda: shutil.rmtree('helpers'),
):
    try:
        attempt()
        errors.append('none')
    except OSError as exc:
        errors.append(type(exc).__name__)
after = open('data/tokens.txt').read()
""",
]
HARVEST = tuple(AnswerRequest(n) for n in ("tokens", "helper", "config", "errors", "after"))


@pytest.fixture(scope="module", autouse=True)
def _close_template() -> Iterator[None]:
    yield
    warm.close_thread_template()


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """The instructor's files: a data file, a helper package, a replaceable config."""
    root = tmp_path / "course"
    (root / "data").mkdir(parents=True)
    (root / "data" / "tokens.txt").write_text("the instructor's tokens")
    (root / "helpers").mkdir()
    (root / "helpers" / "__init__.py").write_text("")
    (root / "helpers" / "tool.py").write_text("VALUE = 42\n")
    (root / "config.txt").write_text("instructor's config")
    return root


def provided(course: Path) -> tuple[ProvidedFile, ...]:
    return (
        ProvidedFile(course / "data" / "tokens.txt", "data/tokens.txt"),
        ProvidedFile(course / "helpers", "helpers"),
        ProvidedFile(course / "config.txt", "config.txt", replaceable=True),
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_notebook_reads_provided_files_it_cannot_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, course: Path, path: str
) -> None:
    use_warm(monkeypatch, path == "warm")
    files = folder(
        tmp_path,
        {
            "hw.ipynb": notebook_bytes(CELLS),
            "data/tokens.txt": "the student's own tokens",
            "config.txt": "the student's config",
        },
    )
    request = ExecutionRequest(
        files=files,
        notebook=NotebookTask("hw.ipynb", harvest=HARVEST),
        provided=provided(course),
        limits=LIMITS,
        mode="off" if path == "off" else "strict",
    )
    got = execute(request)
    assert got.run is not None, got.problem
    answers = {name: a.value for name, a in got.run.answers.items()}
    assert answers["tokens"] == "the instructor's tokens"  # shadowed student file
    assert answers["helper"] == 42
    assert answers["config"] == "the student's config"  # replaceable: the student's wins
    warnings = got.execution.warnings
    assert any("your data/tokens.txt was not used" in w for w in warnings), warnings
    assert not any("config.txt" in w for w in warnings)
    if path == "off":
        assert any("copied" in w and "read-only by permission only" in w for w in warnings)
    else:
        # every write, removal and rename failed; nothing was changed
        assert "none" not in answers["errors"], answers["errors"]
        assert answers["after"] == "the instructor's tokens"
        assert not any("copied" in w for w in warnings)
    assert (course / "data" / "tokens.txt").read_text() == "the instructor's tokens"
    assert (course / "helpers" / "tool.py").read_text() == "VALUE = 42\n"
    assert sorted(p.name for p in (course / "helpers").iterdir()) == ["__init__.py", "tool.py"]


MODULE = """
import os
HERE = os.path.dirname(os.path.abspath(__file__))

def tokens():
    with open(os.path.join(HERE, 'data', 'tokens.txt')) as f:
        return f.read()

def forge():
    try:
        with open(os.path.join(HERE, 'data', 'tokens.txt'), 'w') as f:
            f.write('forged')
    except OSError as exc:
        return type(exc).__name__
    return 'none'
"""


@pytest.mark.parametrize("path", PATHS)
def test_a_module_in_a_subfolder_finds_provided_files_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, course: Path, path: str
) -> None:
    use_warm(monkeypatch, path == "warm")
    files = folder(tmp_path, {"unzipped/layers.py": MODULE})
    request = ExecutionRequest(
        files=files,
        module=ModuleTask("layers.py", calls=(Call("t", "tokens"), Call("f", "forge"))),
        provided=provided(course)[:1],
        limits=LIMITS,
        mode="off" if path == "off" else "strict",
    )
    got = execute(request)
    assert got.module_run is not None, got.module_problem
    results = got.module_run.results
    assert results["t"].value == "the instructor's tokens", results["t"]
    if path != "off":
        assert results["f"].value != "none"
    assert (course / "data" / "tokens.txt").read_text() == "the instructor's tokens"


def test_a_missing_provided_file_is_the_instructors_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"provided file .*absent\.npy.* does not exist"):
        place_provided(
            (ProvidedFile(tmp_path / "absent.npy", "absent.npy"),),
            tmp_path,
            tmp_path,
            copy=False,
            max_bytes=2**30,
        )


def test_provided_files_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"\0" * 4096)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(SandboxError, match=r"4 KiB, more than the 1 KiB limit.*provided_mb"):
        place_provided(
            (ProvidedFile(tmp_path / "big.bin", "big.bin"),),
            scratch,
            scratch,
            copy=True,
            max_bytes=1024,
        )
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    "target", ["/etc/passwd", "../up.txt", "a/../../b", ".", "/content", "/kaggle/input"]
)
def test_a_target_outside_the_notebooks_folder_is_refused(target: str) -> None:
    with pytest.raises(ValueError, match="relative path inside"):
        target_path(target)


COLAB_CELLS = [
    "train = open('/kaggle/input/comp/train.csv').read()",
    "import numpy as np\nx = np.load('/content/drive/MyDrive/x.npy', allow_pickle=False).tolist()",
    # /content exists only through the binds, and `%cd` gets there.
    """
import os
before = os.getcwd()
%cd /content
here = os.getcwd()
listing = sorted(os.listdir('/content/drive/MyDrive'))
os.chdir(before)
""",
    """
errors = []
for attempt in (
    lambda: open('/kaggle/input/comp/train.csv', 'w').write('forged'),
    lambda: open('/kaggle/input/comp/new.csv', 'w').write('new'),
    lambda: open('/content/drive/MyDrive/x.npy', 'ab').write(b'forged'),
    lambda: open('/content/drive/MyDrive/new.txt', 'w').write('new'),
    lambda: open('/content/new.txt', 'w').write('new'),
):
    try:
        attempt()
        errors.append('none')
    except OSError as exc:
        errors.append(type(exc).__name__)
""",
]
COLAB_HARVEST = tuple(AnswerRequest(n) for n in ("train", "x", "here", "listing", "errors"))


def colab_request(tmp_path: Path, course: Path, mode: Mode) -> ExecutionRequest:
    """A notebook reading Kaggle and Colab paths the rubric maps to provided files."""
    import numpy as np

    (course / "train.csv").write_text("a,b\n1,2\n")
    np.save(course / "x.npy", np.arange(3))
    return ExecutionRequest(
        files=folder(tmp_path, {"hw.ipynb": notebook_bytes(COLAB_CELLS)}),
        notebook=NotebookTask("hw.ipynb", harvest=COLAB_HARVEST),
        provided=(
            ProvidedFile(course / "train.csv", "/kaggle/input/comp/train.csv"),
            ProvidedFile(course / "x.npy", "/content/drive/MyDrive/x.npy"),
        ),
        limits=LIMITS,
        mode=mode,
    )


@needs_confined
@pytest.mark.parametrize("path", ["cold", "warm"])
def test_colab_and_kaggle_paths_read_the_provided_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, course: Path, path: str
) -> None:
    # Warm requests with absolute targets take the cold path (warm_or_cold.open_session).
    use_warm(monkeypatch, path == "warm")
    request = colab_request(tmp_path, course, "strict")
    before = (course / "x.npy").stat().st_size
    got = execute(request)
    assert got.run is not None, got.problem
    answers = {name: a.value for name, a in got.run.answers.items()}
    assert answers["train"] == "a,b\n1,2\n"
    assert answers["x"] == [0, 1, 2]
    assert answers["here"] == "/content"
    assert answers["listing"] == ["x.npy"]
    # every write failed (read-only file system, or permission for the root-owned file)
    assert len(answers["errors"]) == 5 and "none" not in answers["errors"], answers["errors"]
    assert (course / "train.csv").read_text() == "a,b\n1,2\n"
    assert (course / "x.npy").stat().st_size == before
    assert not os.path.lexists("/kaggle/input/comp")  # nothing on the host


def test_colab_and_kaggle_paths_are_refused_without_the_sandbox(
    tmp_path: Path, course: Path
) -> None:
    # With the sandbox off nothing may be written into the machine's own /kaggle.
    with pytest.raises(SandboxError, match=r"files: binds .*train\.csv at /kaggle/input/comp"):
        execute(colab_request(tmp_path, course, "off"))
    assert not os.path.lexists("/kaggle/input/comp/train.csv")


def test_a_student_file_where_a_provided_folder_goes_is_shadowed(tmp_path: Path) -> None:
    """The student handed in a file ``data`` where the provided ``data/x.txt`` goes."""
    (tmp_path / "x.txt").write_text("x")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "data").write_text("student")
    placed = place_provided(
        (ProvidedFile(tmp_path / "x.txt", "data/x.txt"),),
        scratch,
        scratch,
        copy=False,
        max_bytes=2**30,
    )
    assert placed.binds == ((tmp_path / "x.txt", scratch / "data" / "x.txt"),)
    assert (scratch / "data" / "x.txt").read_text() == ""  # a placeholder for the bind
    assert placed.warnings == (
        "your data was not used: the instructor provides data/x.txt (read-only); "
        "keep your own files under other names",
    )


@needs_confined
def test_a_provided_file_others_cannot_read_is_named(tmp_path: Path) -> None:
    secret = tmp_path / "weights.bin"
    secret.write_bytes(b"w")
    secret.chmod(0o600)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(SandboxError, match=r"weights\.bin is not readable by other users"):
        place_provided(
            (ProvidedFile(secret, "weights.bin"),),
            scratch,
            scratch,
            copy=False,
            max_bytes=2**30,
            other_uid=True,
        )
