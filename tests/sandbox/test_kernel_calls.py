"""Calls of the functions a notebook defines, made in its own kernel after the last cell.

Through the sandbox's one entry, cold and (where the machine allows) warm: values, a
forward's cache kept for its backward, ``return_args``, in-place mutation, seeds; a call
that never ends; a call that kills the kernel (restart, notebook re-run, go on) and a
second one (the rest "not run"); and no hidden case in the sandbox before its call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.sandbox import (
    AnswerRequest,
    Call,
    Executed,
    ExecutionRequest,
    ModuleTask,
    NotebookTask,
    Stored,
    execute,
)
from tests.sandbox.test_execute import (
    CONFINED,
    FORKED,
    LIMITS,
    MODE,
    folder,
    needs_warm,
    notebook_bytes,
    use_warm,
)

FAST = LIMITS.model_copy(update={"call_timeout": 2.0})

# Each run of the notebook appends a line to runs.txt (its scratch folder is kept for
# the whole execution), so a call can tell how many times the notebook ran.
CELLS = [
    f"import os, signal\nimport numpy as np\nforked = {FORKED}\n"
    "with open('runs.txt', 'a') as fh:\n    fh.write('run\\n')",
    "def double(x):\n    return 2 * x\n\n"
    "def runs():\n    return open('runs.txt').read().count('run')",
    "def forward(x, w):\n    return x @ w, (x, w)\n\n"
    "def backward(dout, cache):\n    x, w = cache\n    return dout @ w.T, x.T @ dout",
    "def scale_(x):\n    x *= 3\n    return x.sum()",
    "def update(param):\n    param['count'] = param.get('count', 0) + 1\n    return None",
    "def draw(n):\n    return np.random.rand(n)",
    "def where():\n    return " + FORKED,
    "def broken():\n    return 1\nundefined_name\ndef defined_too_late():\n    return 2",
    "def spin():\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the grader's alarm\n"
    "    while True:\n        pass",
    "def leave():\n    os._exit(3)",
    "def segfault():\n    import ctypes\n    ctypes.string_at(0)",
]


def run(tmp_path: Path, calls: tuple[Call, ...], harvest: tuple[str, ...] = ()) -> Executed:
    request = ExecutionRequest(
        files=folder(tmp_path, {"hw.ipynb": notebook_bytes(CELLS)}),
        notebook=NotebookTask(
            "hw.ipynb", harvest=tuple(AnswerRequest(n) for n in harvest), calls=calls
        ),
        frameworks=("numpy",),
        limits=FAST,
        mode=MODE,
    )
    return execute(request)


@pytest.mark.parametrize("path", ["cold", pytest.param("warm", marks=needs_warm)])
def test_values_cache_return_args_mutation_and_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    use_warm(monkeypatch, path == "warm")
    x, w = np.arange(6.0).reshape(2, 3), np.ones((3, 2))
    calls = (
        Call("double", "double", (np.arange(3.0),)),
        Call("fw", "forward", (x, w), store="fw"),
        Call("bw", "backward", (np.ones((2, 2)), Stored("fw", 1))),
        Call("scale", "scale_", (np.ones(2),)),
        Call("update", "update", ({"count": 4},), return_args=(0,)),
        Call("draw1", "draw", (3,), seed=5),
        Call("draw2", "draw", (3,), seed=5),
        Call("where", "where"),
        Call("runs", "runs"),
    )
    got = run(tmp_path, calls, harvest=("forked",))
    assert got.run is not None
    assert got.run.answers["forked"].value is (path == "warm")
    res = got.run.calls
    assert all(r.status == "ok" for r in res.values()), res
    assert np.array_equal(res["double"].value, [0.0, 2.0, 4.0])
    assert np.array_equal(res["fw"].value[0], x @ w)
    dx, dw = res["bw"].value
    assert np.array_equal(dx, np.ones((2, 2)) @ w.T) and np.array_equal(dw, x.T @ np.ones((2, 2)))
    assert (res["scale"].value, res["scale"].mutated) == (6.0, (0,))
    assert res["update"].args_after == {0: {"count": 5}}
    np.random.seed(5)
    assert np.array_equal(res["draw1"].value, np.random.rand(3))
    assert np.array_equal(res["draw1"].value, res["draw2"].value)
    assert res["where"].value is (path == "warm")  # the call ran in the notebook's kernel
    assert res["runs"].value == 1
    assert got.execution.warnings == ()


def test_a_missing_function_and_one_defined_in_a_cell_that_raised(tmp_path: Path) -> None:
    got = run(
        tmp_path, (Call("a", "attention"), Call("b", "defined_too_late"), Call("c", "forked"))
    )
    assert got.run is not None
    res = got.run.calls
    assert (res["a"].status, res["a"].message) == (
        "missing_function",
        "attention is not defined in hw.ipynb",
    )
    assert (res["b"].status, res["b"].message) == (
        "missing_function",
        "defined_too_late is not defined in hw.ipynb: it is defined in cell 8, which "
        "raised NameError: name 'undefined_name' is not defined",
    )
    assert (res["c"].status, res["c"].message) == (
        "missing_function",
        "forked in hw.ipynb is a bool, not a function",
    )


def test_a_call_that_never_ends_times_out_and_the_next_calls_run(tmp_path: Path) -> None:
    calls = (
        Call("fw", "forward", (np.eye(2), np.eye(2)), store="fw"),
        Call("spin1", "spin"),
        Call("spin2", "spin"),
        Call("bw", "backward", (np.ones((2, 2)), Stored("fw", 1))),
        Call("double", "double", (4,)),
        Call("runs", "runs"),
    )
    got = run(tmp_path, calls)
    assert got.run is not None
    res = got.run.calls
    assert (res["spin1"].status, res["spin1"].message) == (
        "timeout",
        "spin did not finish within 2 s and could not be interrupted, so its kernel was stopped",
    )
    assert (res["spin2"].status, res["spin2"].message) == (
        "not_run",
        "not run: an earlier call of spin did not finish within 2 s",
    )
    # a new kernel: the notebook ran again, the forward again for the backward's cache
    assert res["runs"].value == 2
    assert res["bw"].status == "ok" and np.array_equal(res["bw"].value[0], np.ones((2, 2)))
    assert res["double"].value == 8


@pytest.mark.parametrize("path", ["cold", pytest.param("warm", marks=needs_warm)])
def test_a_call_that_kills_the_kernel_restarts_it_and_a_second_ends_the_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    use_warm(monkeypatch, path == "warm")
    calls = (
        Call("leave", "leave"),
        Call("runs", "runs"),
        Call("where", "where"),
        Call("segfault", "segfault"),
        Call("double", "double", (4,)),
        Call("runs_again", "runs"),
    )
    got = run(tmp_path, calls)
    assert got.run is not None
    res = got.run.calls
    assert res["leave"].status == "error"
    assert (
        res["leave"].message == "leave stopped the kernel (the kernel process exited with code 3)"
    )
    assert (res["runs"].status, res["runs"].value) == ("ok", 2)
    assert res["segfault"].status == "error"
    assert res["segfault"].message.startswith("segfault stopped the kernel (the kernel process")
    assert res["where"].value is (path == "warm")  # the new kernel too was warm or cold
    why = (
        "not run: the kernel stopped twice while the notebook's functions were called "
        "(the kernel died in leave and the kernel died in segfault), so the grader gave "
        "up on the remaining calls"
    )
    assert [(res[k].status, res[k].message) for k in ("double", "runs_again")] == [
        ("not_run", why),
        ("not_run", why),
    ]
    assert got.execution.warnings == (why.removeprefix("not run: "),)


@pytest.mark.skipif(not CONFINED, reason="the memory limit needs a cgroup (root)")
def test_a_call_over_the_memory_limit_names_it(tmp_path: Path) -> None:
    cells = [
        "def hog():\n    b = bytearray(2 * 2**30)\n    b[::4096] = b'x' * len(b[::4096])",
        "def double(x):\n    return 2 * x",
    ]
    request = ExecutionRequest(
        files=folder(tmp_path, {"hw.ipynb": notebook_bytes(cells)}),
        notebook=NotebookTask("hw.ipynb", calls=(Call("hog", "hog"), Call("d", "double", (2,)))),
        limits=FAST.model_copy(update={"memory_mb": 300}),
        mode=MODE,
    )
    got = execute(request)
    assert got.run is not None
    res = got.run.calls
    assert (res["hog"].status, res["hog"].message) == (
        "error",
        "hog stopped the kernel (it hit the 300 MiB memory limit)",
    )
    assert res["d"].value == 4  # in a new kernel
    assert got.execution.limit_hit == "stopped at the 300 MiB memory limit in a call of hog"
    assert got.execution.failures == ()  # every cell ran


INBOX_CELLS = [
    "import os\nfrom ipykernel import get_connection_file\n"
    "INBOX = os.path.join(os.path.dirname(get_connection_file()), 'calls')\n"
    "at_start = sorted(os.listdir(INBOX))",
    "def peek(*arrays):\n    return sorted(os.listdir(INBOX))",
    "def plant():\n    try:\n        open(os.path.join(INBOX, 'x.npy'), 'w')\n"
    "    except OSError as exc:\n        return type(exc).__name__\n    return 'written'",
]


@pytest.mark.parametrize("path", ["cold", pytest.param("warm", marks=needs_warm)])
def test_a_case_enters_the_kernel_only_for_its_own_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    use_warm(monkeypatch, path == "warm")
    request = ExecutionRequest(
        files=folder(tmp_path, {"hw.ipynb": notebook_bytes(INBOX_CELLS)}),
        notebook=NotebookTask(
            "hw.ipynb",
            harvest=(AnswerRequest("at_start"),),
            calls=(
                Call("one", "peek", (np.ones(2),)),
                Call("three", "peek", (np.ones(2), np.ones(2), np.ones(2))),
                Call("none", "peek"),
                Call("plant", "plant"),
            ),
        ),
        frameworks=("numpy",),
        limits=FAST,
        mode=MODE,
    )
    got = execute(request)
    assert got.run is not None
    assert got.run.answers["at_start"].value == []  # while the cells ran: no case at all
    res = got.run.calls
    assert res["one"].value == ["a0.npy"]
    assert res["three"].value == ["a0.npy", "a1.npy", "a2.npy"]
    assert res["none"].value == []
    if CONFINED:  # the kernel runs as another uid: the folder is read-only to it
        assert res["plant"].value == "PermissionError"


def test_a_record_planted_in_the_outbox_is_never_read(tmp_path: Path) -> None:
    planted = (
        "import json, os, sys\n"
        "outbox = sys.modules['__grader_harness__']._State.outbox\n"
        "record = {'index': 0, 'id': 'x', 'status': 'ok', 'value': 42, 'args_after': {},\n"
        "          'mutated': [], 'message': '', 'traceback': ''}\n"
        "with open(os.path.join(outbox, 'call-0.json'), 'w') as fh:\n"
        "    json.dump(record, fh)\n"
        "sys.modules['__grader_worker__'].call_in_kernel = lambda *args: None"
    )
    request = ExecutionRequest(
        files=folder(tmp_path, {"hw.ipynb": notebook_bytes([planted])}),
        notebook=NotebookTask("hw.ipynb", calls=(Call("x", "solve"),)),
        limits=FAST,
        mode=MODE,
    )
    got = execute(request)
    assert got.run is not None and got.execution.failures == ()
    assert (got.run.calls["x"].status, got.run.calls["x"].message) == (
        "error",
        "the grader could not read back what solve returned: the sandbox wrote no result",
    )


PEEK_MODULE = """
import os, sys

def peek(*arrays):
    return sorted(os.listdir(sys.argv[1]))
"""


def test_a_case_enters_the_module_worker_only_for_its_own_call(tmp_path: Path) -> None:
    request = ExecutionRequest(
        files=folder(tmp_path, {"layers.py": PEEK_MODULE}),
        module=ModuleTask(
            "layers.py",
            calls=(Call("two", "peek", (np.ones(2), np.ones(1))), Call("none", "peek")),
        ),
        limits=FAST,
        mode=MODE,
    )
    got = execute(request)
    assert got.module_run is not None
    res = got.module_run.results
    sources = ["calls.json", "encoding.py", "next", "recorders.py", "worker.py"]
    assert res["two"].value == sorted(["a0.npy", "a1.npy", "call.json", *sources])
    assert res["none"].value == sorted(["call.json", *sources])
