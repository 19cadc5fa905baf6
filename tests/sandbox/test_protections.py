"""What every sandbox binds to run Python, and what it masks there (no root needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grader.sandbox import protections
from grader.sandbox.protections import concealed_paths, python_binds, python_paths

ROOT = Path(__file__).resolve().parents[2]
#: The dev set-up (scripts/install.sh) keeps its venv inside the source tree; binding the
#: venv shows nothing else of the tree (bwrap makes only the venv's parents, empty).
VENV = Path(sys.prefix).resolve()


def exposes_source_tree(path: Path) -> bool:
    """Whether binding ``path`` shows the project tree (beyond a venv inside it)."""
    if path == ROOT or path in ROOT.parents:
        return True
    return ROOT in path.parents and not (path == VENV or VENV in path.parents)


def test_pth_directories_are_bound_but_never_the_grader_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv extended by a ``.pth`` (another venv's packages) needs that directory in
    the sandbox; an old-style editable install's ``.pth`` names the project folder,
    which holds the rubrics, the solutions and the reference: never bound."""
    site = tmp_path / "site-packages"
    site.mkdir()
    extra = tmp_path / "other-packages"
    extra.mkdir()
    (site / "extra.pth").write_text(f"# a comment\nimport os\n{extra}\n{ROOT}\n")
    (site / "editable.pth").write_text(f"{ROOT / 'grader'}\n")
    monkeypatch.setattr(protections.site, "getsitepackages", lambda: [str(site)])
    paths = python_paths()
    assert extra in paths
    assert not any(exposes_source_tree(p) for p in paths)


def test_the_grader_and_reference_packages_are_concealed() -> None:
    hidden = concealed_paths()
    assert Path(protections.__file__).resolve().parents[1] in hidden
    assert any(p.name == "reference" for p in hidden)


def test_a_concealed_package_inside_a_bound_directory_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a non-editable install has it: site-packages/grader and site-packages/reference
    under the bound venv become empty read-only folders, a file becomes /dev/null."""
    venv = tmp_path / "venv"
    for name in ("grader", "reference"):
        (venv / "site-packages" / name).mkdir(parents=True)
    record = venv / "site-packages" / "__editable__.grader.pth"
    record.write_text("")
    outside = tmp_path / "src" / "grader"
    outside.mkdir(parents=True)
    monkeypatch.setattr(protections, "python_paths", lambda: [venv])
    monkeypatch.setattr(
        protections,
        "concealed_paths",
        lambda: (
            venv / "site-packages" / "grader",
            venv / "site-packages" / "reference",
            record,
            outside,
        ),
    )
    args = python_binds()
    assert args[:3] == ["--ro-bind", str(venv), str(venv)]
    for name in ("grader", "reference"):
        d = str(venv / "site-packages" / name)
        at = args.index(d)
        assert args[at - 1] == "--tmpfs" and args[at + 1 : at + 3] == ["--remount-ro", d]
    assert args[args.index(str(record)) - 2 :][:2] == ["--ro-bind", "/dev/null"]
    assert str(outside) not in args  # not bound anyway: nothing to mask
