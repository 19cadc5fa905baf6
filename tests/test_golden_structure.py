"""Golden test of structure checks through the sandbox: a small assignment
(``tests/data/structure/``: a module with attention and its backward, a notebook with an
encoder block) graded as a user would, every check's points and status compared with
the expectations written by hand in ``tests/data/structure/expected/``, then the
messages and the report's layer list."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.cli import main
from grader.report.render import load_records, report_html
from tests.golden.support import Expectation, checks, golden_mismatches, result

DATA = Path(__file__).resolve().parent / "data" / "structure"


def expectations() -> dict[str, Expectation]:
    import yaml

    found = {}
    for path in sorted((DATA / "expected").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        marks = {c: (float(e["points"]), str(e["status"])) for c, e in data["checks"].items()}
        found[path.stem] = Expectation(path.stem, float(data["total"]), marks)
    return found


EXPECTED = expectations()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("structure") / "graded"
    argv = [str(DATA / "submissions"), "--rubric", str(DATA / "structure.yaml")]
    assert main([*argv, "--out", str(out), "--no-reports", "--jobs", "2", "--quiet"]) == 0
    return out


def test_every_sample_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in (DATA / "submissions").iterdir())


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_points_and_status(batch: Path, student: str) -> None:
    assert not golden_mismatches(batch, EXPECTED[student])


def test_messages_name_the_rule_and_what_was_observed(batch: Path) -> None:
    sdpa = checks(result(batch, "calls_sdpa"))["sdpa_by_hand"]
    assert sdpa["message"] == (
        "torch.nn.functional.scaled_dot_product_attention was called inside "
        "scaled_dot_product_attention (2 times); the handout asks you to implement it yourself"
    )
    backward = checks(result(batch, "autograd_backward"))["backward_by_hand"]
    assert backward["message"] == (
        "torch.autograd.grad was called inside attention_backward (2 times); the handout asks "
        "you to implement it yourself"
    )
    linear = checks(result(batch, "linear_only"))["encoder_structure"]
    assert linear["message"].startswith(
        "no torch.nn.MultiheadAttention ran in the forward pass of encoder; the handout asks "
        "you to use one (modules that ran: torch.nn.Linear ×6, torch.nn.LayerNorm ×2, "
    )
    assert linear["message"].endswith(
        "the model has no module of type torch.nn.MultiheadAttention; the handout's "
        "architecture has one"
    )
    # The model check alone cannot tell: it gives the Linear-only encoder full marks.
    assert checks(result(batch, "linear_only"))["encoder_runs"]["status"] == "pass"


def test_the_report_shows_every_module_that_ran(batch: Path) -> None:
    records = {r.student: r for r in load_records(batch / "results")}
    # A failed check draws its body (a passed one is a single line): the layer list.
    html = report_html(records["linear_only"])
    mono = '</td><td class="mono">'
    for row in (
        f"__main__.EncoderBlock{mono}(the model){mono}(2, 10, 16)",
        f"torch.nn.Linear{mono}q{mono}(2, 10, 16)",
        f"torch.nn.LayerNorm{mono}norm1{mono}(2, 10, 16)",
        f"torch.nn.Linear{mono}ff.0{mono}(2, 10, 32)",
    ):
        assert row in html
    assert "<b>requires modules</b> — no torch.nn.MultiheadAttention ran" in html
    details = checks(result(batch, "solution"))["encoder_structure"]["details"]
    assert [(r["type"], r["name"]) for r in details["layers"]] == [
        ("__main__.EncoderBlock", ""),
        ("torch.nn.MultiheadAttention", "attn"),
        ("torch.nn.LayerNorm", "norm1"),
        ("torch.nn.Sequential", "ff"),
        ("torch.nn.Linear", "ff.0"),
        ("torch.nn.ReLU", "ff.1"),
        ("torch.nn.Linear", "ff.2"),
        ("torch.nn.LayerNorm", "norm2"),
    ]
    assert details["params"]["torch.nn.MultiheadAttention"] == 1088
