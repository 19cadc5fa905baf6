from grader.checks.text import TextSpec, find_answer, grade_text, heading_pattern
from tests.conftest import make_ctx

SPEC = TextSpec.model_validate(
    {
        "id": "Q1a",
        "type": "text",
        "heading": "Q1a",
        "points": 3,
        "min_words": 10,
        "concepts": [
            {"name": "divergence", "any": ["diverge", "overshoot"]},
            {"name": "loss", "any": ["loss curve"]},
        ],
    }
)


def test_heading_variants() -> None:
    pat = heading_pattern("Q1a")
    assert all(pat.match(h) for h in ["Q1a", "Q1 a)", "Q1 (a)", "q1a: rates", "Q1-a"])
    assert not any(pat.match(h) for h in ["Q1 answer", "Q1ab", "Q11a", "Q1b"])


def test_answer_spans_cells_until_same_level() -> None:
    md = ("# HW3\n## Q1a\nfirst part", "#### detail\nsecond part", "## Q1b\nother")
    assert find_answer(md, "Q1a") == "first part\n#### detail\nsecond part"
    assert find_answer(md, "Q1c") is None


def test_all_concepts_long_enough() -> None:
    text = (
        "## Q1a\nA high rate can overshoot the minimum and you see it on the loss curve going up."
    )
    res = grade_text(SPEC, make_ctx(markdown=(text,)))
    assert (res.status, res.score) == ("manual", 3)
    assert res.details["word_count"] == 17


def test_half_concepts_and_short_answer_scaled() -> None:
    res = grade_text(SPEC, make_ctx(markdown=("### Q1a\nit will diverge badly",)))
    # 1 of 2 concepts → 1.5, then 4 words of 10 → ×0.4 = 0.6
    assert (res.status, res.score) == ("manual", 0.6)
    assert "not found: loss" in res.message


def test_word_boundary_for_phrases() -> None:
    res = grade_text(SPEC, make_ctx(markdown=("### Q1a\n" + "nondiverge " * 12,)))
    assert res.score == 0 and res.status == "manual"


def test_missing_heading_fails() -> None:
    res = grade_text(SPEC, make_ctx(markdown=("**Q1a** the answer",)))
    assert (res.status, res.score) == ("fail", 0)
    assert "### Q1a" in res.message


SCHEME = TextSpec.model_validate(
    {
        "id": "Q1d",
        "type": "text",
        "heading": "Q1d",
        "points": 3,
        "concepts": [
            {
                "name": "full batch is smoother",
                "points": 1.5,
                "any": ["full batch is smoother", "全批量更平滑"],
                "contradicts": ["mini-batch is smoother"],
            },
            {"name": "noisy estimates", "points": 1.5, "any": ["noisy", "噪声"]},
            {"name": "says updates are faster", "points": 0, "any": ["updates more often"]},
        ],
        "caps": [{"max": 1, "when": ["says updates are faster"]}],
    }
)


def test_scheme_points_contradiction_and_cap() -> None:
    res = grade_text(SCHEME, make_ctx(markdown=("### Q1d\nThe full batch is smoother; noisy.",)))
    assert (res.status, res.score) == ("manual", 3)
    res = grade_text(
        SCHEME,
        make_ctx(
            markdown=("### Q1d\nThe full batch is smoother. No, mini-batch is smoother; noisy.",)
        ),
    )
    assert res.score == 1.5 and "contradicted: full batch is smoother" in res.message
    concepts = {c["name"]: c for c in res.details["concepts"]}
    assert concepts["full batch is smoother"]["contradicted_by"] == "No, mini-batch is smoother"
    res = grade_text(
        SCHEME,
        make_ctx(markdown=("### Q1d\nThe full batch is smoother, it updates more often, noisy.",)),
    )
    assert res.score == 1 and "at most 1 (says: says updates are faster)" in res.message


def test_chinese_answer_is_not_penalised_as_short() -> None:
    spec = SCHEME.model_copy(update={"min_words": 10})
    res = grade_text(spec, make_ctx(markdown=("### Q1d\n全批量更平滑，因为小批量的梯度有噪声。",)))  # noqa: RUF001
    assert res.score == 3 and res.details["word_count"] == 17


def test_final_scheme_marks_without_review() -> None:
    spec = SCHEME.model_copy(update={"final": True})
    res = grade_text(spec, make_ctx(markdown=("### Q1d\nIt is noisy.",)))
    assert (res.status, res.score) == ("partial", 1.5)
    assert "awaiting" not in res.message
