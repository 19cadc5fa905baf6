"""The reference pages in docs/reference/ are what the code generates now, and every
rubric key, limit, overrides key and CLI argument in them has a description."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import docs
from grader.checks import REGISTRY

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "reference"


def test_the_committed_pages_are_what_the_code_generates(tmp_path: Path) -> None:
    assert docs.main([str(tmp_path)]) == 0
    differ = [
        name
        for name in docs.PAGES
        if not (COMMITTED / name).is_file()
        or (COMMITTED / name).read_text("utf-8") != (tmp_path / name).read_text("utf-8")
    ]
    assert differ == [], f"docs/reference/{differ} out of date: run `{docs.COMMAND}` to refresh"


def test_every_key_has_a_description() -> None:
    missing = docs.undocumented()
    assert missing == [], (
        "give these a description (a docstring on the line after the field, or help= for a "
        f"CLI argument), then run `{docs.COMMAND}`: {missing}"
    )


def test_check_mode_names_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs.main([str(tmp_path)])
    (tmp_path / "limits.md").write_text("old\n", encoding="utf-8")
    assert docs.main([str(tmp_path), "--check"]) == 1
    assert (
        f"{tmp_path / 'limits.md'} is out of date: run `{docs.COMMAND}`" in capsys.readouterr().out
    )
    docs.main([str(tmp_path)])
    assert docs.main([str(tmp_path), "--check"]) == 0


def test_the_rubric_page_has_every_check_type_and_key() -> None:
    page = docs.rubric_page()
    for name, entry in REGISTRY.items():
        assert f"\n### {name}\n" in page
        for key in entry.spec.model_fields:
            assert f"| `{key}` |" in page


def test_the_rubric_page_has_every_model_the_top_level_uses() -> None:
    from grader.rubric import RubricFile
    from grader.sandbox.limits import LimitSettings

    page = docs.rubric_page()
    for model in docs.nested_models(RubricFile):
        if model is LimitSettings:  # on the limits page
            continue
        for key in model.model_fields:
            assert f"| `{key}` |" in page, f"{model.__name__}.{key}"


def test_the_cli_page_has_every_verb_and_no_machine_dependent_default() -> None:
    from grader.cli import VERBS

    page = docs.cli_page()
    for verb in VERBS:
        assert f"\n## grade {verb}\n" in page
    assert "| `--jobs JOBS` |" in page
    # --jobs defaults to this machine's cores: the page says N, whatever machine wrote it
    assert "(default: this machine's cores, N)" in page


def test_a_field_description_comes_from_its_docstring_or_comment() -> None:
    class Spec(docs.BaseModel):
        plain: int = 0
        """Said below."""
        #: Said above.
        commented: int = 0
        bare: int = 0

    assert docs.attribute_docs(Spec) == {"plain": "Said below.", "commented": "Said above."}
