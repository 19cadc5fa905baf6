"""The review queues wired to suggestions that learn (grader.review.learn): the order is
most informative first, the calibrated suggestion appears once the instructor has marked
enough answers in overrides.yaml, a group is marked by one decision, and suggestions
never become marks on their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.checks.text import TextSpec
from grader.marks.calibrate import review_order
from grader.marks.embed import Encoder
from grader.overrides import OVERRIDES_FILE, load_overrides, save_override
from grader.review.app import ReviewSession, Server, bind
from grader.review.learn import Learner, rubric_of
from grader.review.queue import Item
from grader.rubric import load_rubric, resolve_rubric_path
from tests.review.conftest import Q1A_ANSWERS, SAME, BagOfWords
from tests.review.test_app import Client


def q1a_spec() -> TextSpec:
    spec = next(s for s in load_rubric("hw3").checks() if s.id == "Q1a")
    assert isinstance(spec, TextSpec)
    return spec


def session_of(out: Path, encoder: Encoder, min_marks: int = 5) -> ReviewSession:
    learner = Learner({"Q1a": q1a_spec()}, encoder=encoder, min_marks=min_marks)
    return ReviewSession(out, "jdoe", learner=learner)


def mark(out: Path, marks: dict[str, float]) -> None:
    """Synthetic instructor marks, written to overrides.yaml as the page writes them."""
    for student, points in marks.items():
        save_override(out / OVERRIDES_FILE, student=student, check="Q1a", points=points,
                      who="jdoe", why="marked", previous=3.0)  # fmt: skip


def q1a(session: ReviewSession) -> list[Item]:
    return session.queues()["Q1a"]


def test_the_queue_asks_for_the_most_informative_answers_first(klass: Path) -> None:
    bag = BagOfWords()
    session = session_of(klass, bag, min_marks=99)  # never calibrated: scheme confidence
    mark(klass, {"s04": 0.0, "s09": 1.0})
    items = q1a(session)
    # the marked answers first, then the unmarked in review_order's order, a group's
    # members together at the place of its first member
    assert [i.student for i in items[:2]] == ["s04", "s09"]
    expected = review_order(
        q1a_spec(), Q1A_ANSWERS, {"s04": 0.0, "s09": 1.0}, min_marks=99, encoder=bag
    )
    first_of_group = next(s for s in expected if s in ("s01", "s02", "s03"))
    expected = [s for s in expected if s not in ("s01", "s02", "s03")]
    unmarked = [i.student for i in items[2:]]
    assert set(unmarked) == set(Q1A_ANSWERS) - {"s04", "s09"}
    assert [s for s in unmarked if s not in ("s01", "s02", "s03")] == expected
    group = unmarked.index(first_of_group)
    assert sorted(unmarked[group : group + 3]) == ["s01", "s02", "s03"]
    assert {i.group for i in items if i.student in ("s01", "s02", "s03")} == {"G1"}
    # before enough marks: the scheme's suggestion from the result, and how many to go
    proposal = items[2].proposal
    assert proposal is not None and not proposal.calibrated
    assert (proposal.mark, proposal.marked, proposal.needed) == (items[2].suggested, 2, 99)


def test_low_confidence_answers_come_first_once_calibrated(klass: Path) -> None:
    session = session_of(klass, BagOfWords())
    mark(klass, {"s04": 0.0, "s05": 3.0, "s06": 2.0, "s07": 0.0, "s08": 1.5})
    unmarked = [i for i in q1a(session) if not i.reviewed]
    flags = [i.proposal.low_confidence for i in unmarked if i.proposal is not None]
    assert len(flags) == len(unmarked) == 5
    assert flags == sorted(flags, reverse=True)  # every flagged one before the others


def test_the_suggestion_is_calibrated_after_min_marks_marks(klass: Path) -> None:
    session = session_of(klass, BagOfWords())
    mark(klass, {"s04": 0.0, "s05": 3.0, "s06": 2.0, "s07": 0.0})
    before = {i.student: i for i in q1a(session)}
    assert before["s01"].proposal is not None and not before["s01"].proposal.calibrated
    assert before["s01"].offer == before["s01"].suggested == 3.0  # the result's, as graded

    mark(klass, {"s08": 1.5})  # the fifth mark: the queue learns from now on
    after = {i.student: i for i in q1a(session)}
    proposal = after["s01"].proposal
    assert proposal is not None and proposal.calibrated and proposal.marked == 5
    assert proposal.confidence is not None and 0 <= proposal.confidence <= 1
    assert after["s01"].offer == proposal.mark != after["s01"].suggested
    # the evidence: the sentence behind each concept, and its similarity
    evidence = {c.name: c for c in after["s01"].concepts}
    assert set(evidence) == {"divergence or overshooting", "detection from the loss curve"}
    assert evidence["divergence or overshooting"].sentence in SAME
    # a suggestion is never a mark: the results still await review, nothing was written
    result = json.loads((klass / "results" / "s01.json").read_text(encoding="utf-8"))
    q1a_result = next(c for q in result["questions"] for c in q["checks"] if c["id"] == "Q1a")
    assert q1a_result["status"] == "manual"
    assert {o.student for o in load_overrides(klass / OVERRIDES_FILE)} == {
        "s04", "s05", "s06", "s07", "s08",
    }  # fmt: skip


def test_the_order_is_computed_once_per_state(klass: Path) -> None:
    calls: list[int] = []

    class Counting(BagOfWords):
        def encode(self, texts):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().encode(texts)

    session = session_of(klass, Counting())
    session.prepare()  # what `grade review` does in the background as it starts
    n = len(calls)
    assert n > 0
    session.queue("Q1a")
    q1a(session)  # nothing changed: no new work at all
    assert len(calls) == n
    mark(klass, {"s04": 0.0})
    # a new mark: reordered (the marked answer first), every text embedded already
    assert q1a(session)[0].student == "s04"
    assert len(calls) == n


@pytest.fixture
def served(klass: Path) -> Iterator[tuple[Server, Client]]:
    server = Server(session_of(klass, BagOfWords()), bind(0))
    server.start()
    client = Client(server)
    client.login()
    yield server, client
    server.session.renderer.wait_idle(300)
    server.stop()


def key_of(server: Server, student: str) -> str:
    from grader.review.queue import pseudonym

    return pseudonym(server.session.secret, student)


def test_one_decision_marks_a_group_with_an_audited_entry_each(
    served: tuple[Server, Client], klass: Path
) -> None:
    server, client = served
    items = q1a(server.session)
    leader = next(n for n, i in enumerate(items) if i.group is not None)
    status, _, page = client.request("GET", f"/queue/Q1a?i={leader}")
    assert status == 200 and 'id="whole-group"' in page and "Group G1: 3 similar" in page
    form = {"token": server.session.token, "key": key_of(server, items[leader].student),
            "points": "2", "comment": "Say why.", "whole_group": "1", "action": "save",
            "members": ",".join(key_of(server, s) for s in ("s01", "s02", "s03"))}  # fmt: skip
    status, _, _ = client.request("POST", "/queue/Q1a/mark", form=form)
    assert status == 303
    entries = {o.student: o for o in load_overrides(klass / OVERRIDES_FILE)}
    assert set(entries) == {"s01", "s02", "s03"}
    for entry in entries.values():
        assert (entry.points, entry.comment, entry.who, entry.why, entry.previous) == (
            2.0, "Say why.", "jdoe", "marked as group of 3", 3.0,
        )  # fmt: skip
        assert entry.when


def test_an_answer_taken_out_of_its_group_is_marked_alone(
    served: tuple[Server, Client], klass: Path
) -> None:
    server, client = served
    items = q1a(server.session)
    leader = next(i for i in items if i.group is not None)
    form = {"token": server.session.token, "key": key_of(server, "s02"),
            "back": key_of(server, leader.student), "reveal": "0"}  # fmt: skip
    status, _, _ = client.request("POST", "/queue/Q1a/ungroup", form=form)
    assert status == 303
    grouped = {i.student: i.group for i in q1a(server.session)}
    assert grouped["s02"] is None and grouped["s01"] == grouped["s03"] == "G1"
    members = f"{key_of(server, 's01')},{key_of(server, 's03')}"
    form = {"token": server.session.token, "key": key_of(server, "s01"), "whole_group": "1",
            "action": "accept", "members": members}  # fmt: skip
    assert client.request("POST", "/queue/Q1a/mark", form=form)[0] == 303
    entries = {o.student: o for o in load_overrides(klass / OVERRIDES_FILE)}
    assert set(entries) == {"s01", "s03"}
    assert entries["s01"].why == "accepted suggestion, marked as group of 2"


def test_the_rubric_is_found_only_when_unchanged(klass: Path, tmp_path: Path) -> None:
    rubric, note = rubric_of(klass)
    assert rubric is not None and note is None  # batch.json names hw3, byte-identical
    changed = tmp_path / "hw3.yaml"
    changed.write_text(
        resolve_rubric_path("hw3").read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8"
    )
    batch = json.loads((klass / "batch.json").read_text(encoding="utf-8"))
    batch["rubric_sha256"] = "0" * 64
    (klass / "batch.json").write_text(json.dumps(batch), encoding="utf-8")
    rubric, note = rubric_of(klass)
    assert rubric is None and note is not None and "--rubric" in note
    rubric, note = rubric_of(klass, str(changed))
    assert rubric is not None and note is not None and "not byte-identical" in note


def test_real_model_calibration_on_the_class(klass: Path, e5: Encoder) -> None:
    session = session_of(klass, e5)
    mark(klass, {"s04": 0.0, "s05": 3.0, "s06": 2.5, "s07": 0.0, "s08": 1.5})
    items = {i.student: i for i in q1a(session)}
    assert all(i.proposal is not None and i.proposal.calibrated for i in items.values())
    # the three identical answers are one group, the Chinese one stands alone
    assert items["s01"].group == items["s02"].group == items["s03"].group is not None
    assert items["s10"].group is None
    # the evidence shown for the Chinese answer: its own sentences, with similarities
    shown = [c for c in items["s10"].concepts if c.similarity is not None]
    assert shown and all(c.sentence and c.sentence in Q1A_ANSWERS["s10"] for c in shown)
