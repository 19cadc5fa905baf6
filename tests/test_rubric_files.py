"""A rubric's ``files:`` (instructor-provided files): parsing, errors naming the line,
what ``grade validate`` refuses, and the hash in the execution cache key and provenance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.cache import execution_fingerprint
from grader.errors import RubricError
from grader.rubric import load_rubric, provided_sha256, refuse_unbindable_files
from grader.sandbox import Mode, ProvidedFile
from grader.sandbox.protections import OFF, detect_protections
from grader.validate import provided_leaks, validate_rubric

HEAD = "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\n"
QUESTIONS = (
    "questions:\n  - id: q1\n    checks:\n      - {id: a, type: value, answer: a, points: 1}\n"
)


def course(tmp_path: Path, files: str, extra: str = "") -> Path:
    """A course folder with data, a helper package and a rubric listing ``files``."""
    root = tmp_path / "course"
    (root / "data").mkdir(parents=True)
    (root / "data" / "tokens.npy").write_bytes(b"tokens")
    (root / "helpers").mkdir()
    (root / "helpers" / "tool.py").write_text("VALUE = 1\n")
    path = root / "r.yaml"
    path.write_text(HEAD + extra + files + QUESTIONS)
    return path


def test_short_and_long_forms(tmp_path: Path) -> None:
    path = course(
        tmp_path,
        "files:\n  - data/tokens.npy\n"
        "  - {source: helpers/, target: lib/helpers, replaceable: true}\n",
    )
    rubric = load_rubric(path)
    root = path.parent
    assert rubric.provided == (
        ProvidedFile(root / "data" / "tokens.npy", "data/tokens.npy", False),
        ProvidedFile(root / "helpers", "lib/helpers", True),
    )


def test_a_misspelt_key_of_the_long_form_names_the_line(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - data/tokens.npy\n  - {sourc: helpers}\n")
    with pytest.raises(RubricError) as err:
        load_rubric(path)
    assert err.value.line == 7
    assert "unknown key 'files.1.sourc' (did you mean 'source'?)" in str(err.value)


def test_no_files_key_provides_nothing(tmp_path: Path) -> None:
    rubric = load_rubric(course(tmp_path, ""))
    assert rubric.provided == ()
    assert provided_sha256(rubric.provided) is None


def test_a_missing_provided_file_names_the_rubric_line(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - data/tokens.npy\n  - data/weights.pt\n")
    with pytest.raises(RubricError) as err:
        load_rubric(path)
    assert err.value.line == 7
    assert str(err.value).startswith(
        f"{path}:7: files: provided file 'data/weights.pt' not found (looked for "
        f"{path.parent / 'data' / 'weights.pt'})"
    )


@pytest.mark.parametrize(
    "target", ["/etc/x", "../x", "a/../../x", "/content", "/kaggle/x.csv", "/content/../etc/x"]
)
def test_a_target_outside_the_notebooks_folder_names_the_line(tmp_path: Path, target: str) -> None:
    path = course(tmp_path, f"files:\n  - {{source: data/tokens.npy, target: '{target}'}}\n")
    with pytest.raises(
        RubricError,
        match=r":6: files: provided file target .* relative path .* under /content/ or "
        r"/kaggle/input/",
    ):
        load_rubric(path)


def test_colab_and_kaggle_targets_are_kept_absolute(tmp_path: Path) -> None:
    path = course(
        tmp_path,
        "files:\n"
        "  - {source: data/tokens.npy, target: /kaggle/input/comp/tokens.npy}\n"
        "  - {source: helpers, target: /content/drive/MyDrive/helpers}\n",
    )
    targets = [p.target for p in load_rubric(path).provided]
    assert targets == ["/kaggle/input/comp/tokens.npy", "/content/drive/MyDrive/helpers"]


def test_a_replaceable_absolute_target_names_the_line(tmp_path: Path) -> None:
    path = course(
        tmp_path,
        "files:\n  - data/tokens.npy\n"
        "  - {source: helpers, target: /content/helpers, replaceable: true}\n",
    )
    with pytest.raises(RubricError, match=r":7: files: '/content/helpers' is an absolute target"):
        load_rubric(path)


@pytest.mark.parametrize(
    ("layout", "words"),
    [
        ("files:\n  - .\n", "is or contains the rubric file itself"),
        ("solution: sol\nfiles:\n  - sol\n", "is or contains the solution"),
        ("files:\n  - data\n", "contains a golden/ folder"),
        ("files:\n  - data\n", "contains a solution/ folder"),
    ],
)
def test_provided_paths_that_would_show_answers_are_refused(
    tmp_path: Path, layout: str, words: str
) -> None:
    path = course(tmp_path, layout)
    (path.parent / "sol").mkdir()
    name = "golden" if "golden" in words else "solution"
    if "folder" in words:
        (path.parent / "data" / name).mkdir()
    with pytest.raises(RubricError, match=words):
        load_rubric(path)


def test_a_symbolic_link_in_a_provided_folder_is_refused(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - helpers\n")
    os.symlink(path, path.parent / "helpers" / "link.yaml")
    with pytest.raises(RubricError, match=r":6: files: 'helpers' holds a symbolic link"):
        load_rubric(path)


def test_provided_files_over_the_limit_name_the_key(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - data\n", extra="limits: {provided_mb: 1}\n")
    (path.parent / "data" / "big.bin").write_bytes(b"\0" * (2 * 2**20))
    with pytest.raises(RubricError, match=r":6: files: .*2\.0 MiB, more than limits.provided_mb"):
        load_rubric(path)


def test_validate_refuses_a_provided_folder_holding_the_reference(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - helpers\n")
    text = path.read_text().replace("reference: hw3", "reference: helpers/ref.py")
    path.write_text(text)
    (path.parent / "helpers" / "ref.py").write_text("def compute():\n    return {'a': 1}\n")
    problems = provided_leaks(load_rubric(path))
    assert problems == [
        f"files: {path.parent / 'helpers'} is or contains the reference module "
        f"{path.parent / 'helpers' / 'ref.py'}: students would see the answers; "
        "provide data only"
    ]


def test_grade_validate_stops_at_the_leak_before_running_anything(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - helpers\n")
    path.write_text(path.read_text().replace("reference: hw3", "reference: helpers/ref.py"))
    (path.parent / "helpers" / "ref.py").write_text("raise SystemExit('must not be imported')\n")
    logged: list[str] = []
    problems = validate_rubric(str(path), sandbox="off", log=logged.append)
    assert len(problems) == 1 and "is or contains the reference module" in problems[0]
    assert logged == [f"{path}: schema OK (1 checks)"]


def test_validate_accepts_data_beside_the_reference(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - data/tokens.npy\n")
    assert provided_leaks(load_rubric(path)) == []


def test_changing_the_data_changes_the_execution_key_and_provenance(tmp_path: Path) -> None:
    path = course(tmp_path, "files:\n  - data\n")
    before = load_rubric(path)
    key = execution_fingerprint(before, [], "0" * 64, "strict")
    digest = provided_sha256(before.provided)
    assert digest is not None and len(digest) == 64
    # same content: same key (also after the file is rewritten with the same bytes)
    (path.parent / "data" / "tokens.npy").write_bytes(b"tokens")
    assert execution_fingerprint(load_rubric(path), [], "0" * 64, "strict") == key
    (path.parent / "data" / "tokens.npy").write_bytes(b"tokenz")
    after = load_rubric(path)
    assert provided_sha256(after.provided) != digest
    assert execution_fingerprint(after, [], "0" * 64, "strict") != key
    # the rubric file is unchanged: only the data moved the key
    assert after.sha256 == before.sha256


def test_making_a_file_replaceable_changes_the_key(tmp_path: Path) -> None:
    fixed = load_rubric(course(tmp_path / "a", "files:\n  - data/tokens.npy\n"))
    loose = load_rubric(
        course(
            tmp_path / "b",
            "files:\n  - {source: data/tokens.npy, replaceable: true}\n",
        )
    )
    assert provided_sha256(fixed.provided) != provided_sha256(loose.provided)


@pytest.mark.parametrize("sandbox", ["off", "permissive-without-bwrap"])
def test_absolute_targets_are_refused_where_nothing_can_bind_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: str
) -> None:
    path = course(
        tmp_path,
        "files:\n  - data/tokens.npy\n  - {source: helpers, target: /kaggle/input/comp/helpers}\n",
    )
    rubric = load_rubric(path)
    if sandbox != "off":
        monkeypatch.setattr("grader.sandbox.detect_protections", lambda: OFF)
    mode: Mode = "off" if sandbox == "off" else "permissive"
    with pytest.raises(RubricError, match=r":7: files: '/kaggle/input/comp/helpers' can be bound"):
        refuse_unbindable_files(rubric, mode)
    assert not os.path.lexists("/kaggle/input/comp")


def test_relative_targets_and_the_sandbox_need_no_refusal(tmp_path: Path) -> None:
    relative = load_rubric(course(tmp_path, "files:\n  - data/tokens.npy\n"))
    refuse_unbindable_files(relative, "off")  # copied instead, as before
    absolute = load_rubric(
        course(tmp_path / "b", "files:\n  - {source: helpers, target: /content/helpers}\n")
    )
    if detect_protections().bubblewrap:
        refuse_unbindable_files(absolute, "strict")
        refuse_unbindable_files(absolute, "permissive")


def test_nested_absolute_targets_name_the_line(tmp_path: Path) -> None:
    path = course(
        tmp_path,
        "files:\n  - {source: helpers, target: /kaggle/input/comp}\n"
        "  - {source: data/tokens.npy, target: /kaggle/input/comp/tokens.npy}\n",
    )
    with pytest.raises(RubricError, match=r":7: files: '/kaggle/input/comp/tokens.npy' and "):
        load_rubric(path)
