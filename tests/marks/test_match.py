"""Matching by meaning with the real model (loaded once per session: see conftest)."""

from grader.marks.embed import E5Encoder
from grader.marks.match import match_answer
from grader.marks.scheme import Concept

CONCEPTS = [
    Concept(
        name="full batch is smoother",
        points=1,
        any=["full batch is smoother"],
        means=["The full-batch loss curve is the smoother one."],
        contradicts=["The mini-batch loss curve is the smoother one."],
    ),
    Concept(
        name="noisy mini-batch gradients",
        points=1,
        any=["noisy"],
        means=["Mini-batch gradients are noisy estimates computed on a random subset."],
    ),
    Concept(
        name="exact gradient",
        points=1,
        any=["exact gradient"],
        means=["Full-batch gradient descent uses the exact gradient of the whole dataset."],
    ),
]
PROMPT = "Which loss curve is smoother, full-batch or mini-batch, and why?"


def found(text: str, e5: E5Encoder) -> dict[str, bool]:
    return match_answer(CONCEPTS, text, prompt=PROMPT, encoder=e5).found()


def test_chinese_answer_found_by_meaning(e5: E5Encoder) -> None:
    match = match_answer(
        CONCEPTS,
        "全批量的曲线更平滑，因为它使用整个数据集的精确梯度。",  # noqa: RUF001
        prompt=PROMPT,
        encoder=e5,
    )
    got = {c.name: c for c in match.concepts}
    assert got["full batch is smoother"].found and got["full batch is smoother"].via == "meaning"
    assert got["exact gradient"].found
    assert not got["noisy mini-batch gradients"].found
    assert got["full batch is smoother"].evidence is not None


def test_a_clear_contradiction_cancels_the_concept(e5: E5Encoder) -> None:
    concepts = [
        Concept(
            name="slow convergence",
            points=1,
            means=["Training converges very slowly and needs many epochs."],
            contradicts=["The loss explodes and becomes NaN."],
        ),
        Concept(name="stuck", points=1, means=["The model gets stuck in a poor local minimum."]),
    ]
    match = match_answer(
        concepts, "It needs many epochs. Then the loss explodes to NaN.", encoder=e5
    )
    slow = match.concepts[0]
    assert not slow.found and slow.contradicted_by == "Then the loss explodes to NaN."


def test_a_contradicting_phrase_cancels_even_a_phrase_match(e5: E5Encoder) -> None:
    concepts = [CONCEPTS[0].model_copy(update={"contradicts": ["mini-batch is smoother"]})]
    match = match_answer(
        concepts, "I think the full batch is smoother. No: mini-batch is smoother.", encoder=e5
    )
    assert match.found() == {"full batch is smoother": False}


def test_off_topic_answer_finds_nothing(e5: E5Encoder) -> None:
    # (An on-topic sentence that makes none of the points may still be given its closest
    # concept: the known limit of matching by contrast, see bench/marks/README.md.)
    assert not any(found("I had pizza for dinner yesterday.", e5).values())


def test_phrases_only_never_loads_a_model() -> None:
    class Refuses:
        name = "refuses"

        def encode(self, texts: object) -> object:
            raise AssertionError("the model was used")

    match = match_answer(CONCEPTS, "It is noisy.", encoder=Refuses(), meaning=False)  # type: ignore[arg-type]
    assert match.found() == {
        "full batch is smoother": False,
        "noisy mini-batch gradients": True,
        "exact gradient": False,
    }
