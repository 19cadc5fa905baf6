"""overrides.yaml with the review's audit fields: written under a lock, read back,
files without them still valid, bad audit fields named with file and line."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from grader.overrides import (
    Decision,
    OverridesError,
    load_overrides,
    save_override,
)


def test_save_records_who_when_previous_why(tmp_path: Path) -> None:
    path = tmp_path / "overrides.yaml"
    entry = save_override(
        path, student="alice", check="Q1a", points=2.5, comment="Detection missing.",
        who="jdoe", why="marked", previous=3.0, when="2026-12-04T23:00:00+00:00",
    )  # fmt: skip
    [read] = load_overrides(path)
    assert (read.student, read.check, read.points, read.comment) == (
        "alice", "Q1a", 2.5, "Detection missing.",
    )  # fmt: skip
    assert (read.who, read.when, read.previous, read.why) == (
        "jdoe", "2026-12-04T23:00:00+00:00", 3.0, "marked",
    )  # fmt: skip
    assert read.history == () and entry.history == ()


def test_a_new_decision_replaces_the_entry_and_keeps_the_old_one_in_history(
    tmp_path: Path,
) -> None:
    path = tmp_path / "overrides.yaml"
    save_override(path, student="alice", check="Q1a", points=3, who="a", why="accepted",
                  previous=3.0, when="t1")  # fmt: skip
    save_override(path, student="bob", check="Q1a", points=1, who="a", why="marked", when="t2")
    save_override(path, student="alice", check="Q1a", points=2, comment="regraded", who="b",
                  why="regrade 1: no", when="t3")  # fmt: skip
    entries = load_overrides(path)
    assert [(o.student, o.points) for o in entries] == [("alice", 2.0), ("bob", 1.0)]
    alice = entries[0]
    # previous defaults to the replaced mark
    assert (alice.who, alice.why, alice.previous, alice.when) == ("b", "regrade 1: no", 3.0, "t3")
    assert alice.history == (Decision(3.0, "", "a", "t1", 3.0, "accepted"),)


def test_files_written_by_hand_stay_valid_and_their_comments_are_kept_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "overrides.yaml"
    text = "# my marks\n- student: bob\n  check: Q1b\n  points: 1\n  comment: ok\n"
    path.write_text(text, encoding="utf-8")
    [bob] = load_overrides(path)
    assert (bob.who, bob.when, bob.previous, bob.why, bob.history) == ("", "", None, "", ())
    save_override(path, student="alice", check="Q1a", points=1, who="jdoe")
    assert (tmp_path / "overrides.yaml.orig").read_text(encoding="utf-8") == text
    assert [o.student for o in load_overrides(path)] == ["bob", "alice"]
    save_override(path, student="carol", check="Q1a", points=0, who="jdoe")
    assert (tmp_path / "overrides.yaml.orig").read_text(encoding="utf-8") == text


def test_an_unquoted_timestamp_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "overrides.yaml"
    path.write_text(
        "- {student: a, check: Q1a, points: 1, when: 2026-12-04 23:00:00}\n", encoding="utf-8"
    )
    assert load_overrides(path)[0].when == "2026-12-04T23:00:00"


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("who: [x]", "who must be text"),
        ("previous: -1", "previous must be a number"),
        ("why: 3", "why must be text"),
        ("history: 3", "history must be a list"),
        ("history: [{points: 1, colour: red}]", "history item 1: unknown key 'colour'"),
        ("history: [{comment: x}]", "history item 1: points must be a number"),
        ("whom: x", "unknown key 'whom'"),
    ],
)
def test_bad_audit_fields_name_the_file_and_line(tmp_path: Path, entry: str, words: str) -> None:
    path = tmp_path / "overrides.yaml"
    path.write_text(
        "- {student: a, check: Q1a, points: 1}\n"
        f"- student: b\n  check: Q1a\n  points: 1\n  {entry}\n",
        encoding="utf-8",
    )
    with pytest.raises(OverridesError) as raised:
        load_overrides(path)
    assert str(path) in str(raised.value)
    assert words in str(raised.value)
    if "unknown key 'whom'" not in words:
        assert ":2 (entry 2" in str(raised.value)


def test_save_refuses_negative_points(tmp_path: Path) -> None:
    with pytest.raises(OverridesError, match="points must be a number"):
        save_override(tmp_path / "overrides.yaml", student="a", check="Q1a", points=-1)


def _writer(path: str, who: str, count: int) -> None:
    for n in range(count):
        save_override(Path(path), student=f"{who}{n}", check="Q1a", points=1, who=who)


def test_concurrent_writers_lose_no_decision(tmp_path: Path) -> None:
    """Two processes writing at once: the lock makes every read-modify-write whole."""
    path = tmp_path / "overrides.yaml"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(path), w, 15)) for w in ("x", "y")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert [w.exitcode for w in workers] == [0, 0]
    students = sorted(o.student for o in load_overrides(path))
    assert students == sorted([f"x{n}" for n in range(15)] + [f"y{n}" for n in range(15)])


def test_the_cache_of_a_written_file_matches_a_fresh_read(tmp_path: Path) -> None:
    from grader.overrides import _parse

    path = tmp_path / "overrides.yaml"
    save_override(path, student="a", check="Q1a", points=1, comment="two\nlines", who="x")
    save_override(path, student="b", check="Q1a", points=2, comment="- looks like a list", who="x")
    save_override(path, student="a", check="Q1a", points=3, comment="again", who="y")
    assert load_overrides(path) == _parse(path)  # lines and history included
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [lines[o.line - 1] for o in load_overrides(path)] == ["- student: a", "- student: b"]
    # an edit by hand is seen at once
    path.write_text("- {student: c, check: Q1b, points: 0}\n", encoding="utf-8")
    assert [(o.student, o.line) for o in load_overrides(path)] == [("c", 1)]
