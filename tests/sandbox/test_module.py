"""The module runner's grader side: what goes into the inbox, and where the module is found.

The worker itself (import limits, hangs, forged outboxes) is exercised in
``tests/harness/test_worker.py``; these tests need no kernel and no privileges, except
the last, which runs a module found in a sub-folder through a real worker.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from grader.sandbox import Call, ExecutionLimits, Stored
from grader.sandbox.module import run_module
from grader.sandbox.module_inbox import CallInbox, encode_arg, write_inbox
from grader.sandbox.scratch import locate_module


def test_arguments_become_json_and_npy_files(tmp_path: Path) -> None:
    counter = [0]
    x = np.arange(6.0).reshape(2, 3)
    tree = encode_arg(
        {"x": x, "t": (1, np.float32(2.5)), "s": Stored("fwd", 1), "f": math.inf, "n": None},
        tmp_path,
        counter,
    )
    assert tree == {
        "x": {"__ndarray__": "a0.npy"},
        "t": {"__tuple__": [1, 2.5]},
        "s": {"__stored__": ["fwd", 1]},
        "f": {"__float__": "inf"},
        "n": None,
    }
    assert counter == [1]
    assert np.array_equal(np.load(tmp_path / "a0.npy", allow_pickle=False), x)


def test_a_dict_that_looks_like_a_tag_is_wrapped(tmp_path: Path) -> None:
    """A student-visible dict whose only key is a tag must not be decoded as that tag."""
    assert encode_arg({"__ndarray__": "x"}, tmp_path, [0]) == {"__dict__": {"__ndarray__": "x"}}


@pytest.mark.parametrize("value", [np.array(["a"]), np.array([object()]), {1, 2}, b"raw"])
def test_what_cannot_travel_is_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(TypeError):
        encode_arg(value, tmp_path, [0])


def test_the_inbox_holds_sources_and_config_and_one_call_at_a_time(tmp_path: Path) -> None:
    inbox = CallInbox(tmp_path / "inbox")
    limits = ExecutionLimits(import_timeout=3, call_timeout=2, max_call_bytes=1000)
    calls = [
        Call("c0", "f", (np.ones(2),), {"k": 1}, store="s", return_args=(0,), seed=7),
        Call("c1", "g", (np.zeros(3), np.zeros(1))),
    ]
    fifo = write_inbox(inbox, "code/layers.py", calls, limits)
    try:
        config = json.loads((inbox.path / "calls.json").read_text())
        assert config["module"] == "code/layers.py" and config["module_name"] == "layers"
        assert (config["import_timeout"], config["call_timeout"], config["max_bytes"]) == (
            3,
            2,
            1000,
        )
        # which calls there are, none of their inputs
        assert config["calls"] == [
            {"id": "c0", "function": "f", "store": "s"},
            {"id": "c1", "function": "g", "store": None},
        ]
        assert sorted(p.name for p in inbox.path.iterdir()) == [
            "calls.json",
            "encoding.py",
            "next",
            "recorders.py",
            "worker.py",
        ]
        assert stat.S_ISFIFO((inbox.path / "next").stat().st_mode)
        for name in ("encoding.py", "recorders.py", "worker.py", "calls.json", "next"):
            assert (inbox.path / name).stat().st_mode & stat.S_IROTH, name
        assert "def main(" in (inbox.path / "worker.py").read_text()
        first = json.loads(inbox.write(calls[0], {}))
        assert first == {
            "id": "c0",
            "function": "f",
            "args": [{"__ndarray__": "a0.npy"}],
            "kwargs": {"k": 1},
            "store": "s",
            "return_args": [0],
            "seed": 7,
            "storers": {},
            "record_structure": False,
        }
        assert (inbox.path / "a0.npy").stat().st_mode & stat.S_IROTH
        inbox.write(calls[1], {})  # the previous call's inputs are gone
        assert sorted(p.name for p in inbox.path.glob("a*.npy")) == ["a0.npy", "a1.npy"]
        assert np.load(inbox.path / "a0.npy").shape == (3,)
        inbox.clear()
        assert list(inbox.path.glob("a*.npy")) == []
    finally:
        os.close(fifo)
        inbox.close()


def test_the_grader_writes_through_its_folder_not_what_is_planted_at_its_path(
    tmp_path: Path,
) -> None:
    inbox = CallInbox(tmp_path / "calls")
    inbox.path.rename(tmp_path / "moved")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "calls").symlink_to(elsewhere)
    inbox.write(Call("c", "f", (np.ones(2),)), {})
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in (tmp_path / "moved").iterdir()] == ["a0.npy"]
    inbox.close()


def test_locate_module_at_the_top_in_one_folder_or_not_at_all(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "other").mkdir(parents=True)
    (top / "layers.py").write_text("")
    (top / "other" / "layers.py").write_text("")
    assert locate_module("layers.py", top).path == top / "layers.py"

    nested = tmp_path / "nested"
    (nested / "hw2" / "__MACOSX").mkdir(parents=True)
    (nested / "hw2" / "layers.py").write_text("")
    (nested / "hw2" / "__MACOSX" / "layers.py").write_text("")  # archive debris
    found = locate_module("layers.py", nested)
    assert found.path == nested / "hw2" / "layers.py"
    assert found.warnings == (
        "imported hw2/layers.py: the handout asks for layers.py at the top level",
    )

    several = tmp_path / "several"
    for sub in ("a", "b"):
        (several / sub).mkdir(parents=True)
        (several / sub / "layers.py").write_text("")
    assert locate_module("layers.py", several).problem == (
        "several files named layers.py (a/layers.py, b/layers.py): keep one"
    )

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "Layers.PY").write_text("")
    assert locate_module("layers.py", empty).problem == (
        "no layers.py in the submission (found: Layers.PY)"
    )


def test_a_module_in_a_sub_folder_is_imported_from_there(tmp_path: Path) -> None:
    work, outbox, inbox = tmp_path / "work", tmp_path / "out", tmp_path / "in"
    (work / "hw2").mkdir(parents=True)
    outbox.mkdir()
    (work / "hw2" / "helpers.py").write_text("def twice(x):\n    return 2 * x\n")
    (work / "hw2" / "layers.py").write_text(
        "from helpers import twice\n\ndef f(x):\n    return twice(x)\n"
    )
    limits = ExecutionLimits(import_timeout=20, call_timeout=10)
    run = run_module(
        work / "hw2" / "layers.py", work, outbox, inbox, [Call("c", "f", (3,))], limits
    )
    assert run.import_error is None and run.module == "layers.py"
    assert (run.results["c"].status, run.results["c"].value) == ("ok", 6)
