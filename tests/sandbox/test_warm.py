"""Warm starts: kernels forked from one sandboxed template, one student after another.

Every test here runs on the same template (this thread's, holding torch for HW3), so
each also proves that the previous student left nothing behind. Needs root, bubblewrap
and a writable cgroup, as in CI.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from grader.models import AnswerRequest, Call, ModuleRun, NotebookRun
from grader.pipeline import execution_limits
from grader.reference import load_expected
from grader.rubric import Rubric, load_rubric
from grader.sandbox import confine, warm
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.module import run_module
from grader.sandbox.protections import detect_protections
from grader.sandbox.stages import notebook_in_session, with_limit
from grader.sandbox.warm_or_cold import open_session
from grader.sandbox.warm_session import WarmSession

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not detect_protections().complete,
    reason="warm starts need root, bubblewrap and a writable cgroup (as in CI)",
)

# The notebook tests' times, on top of the rubric's limits.
TIMES = {"cell_timeout": 20, "interrupt_grace": 3, "harvest_timeout": 20}

WARM_MARKER = "NAME = open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1] == b'-c'"
FIRST = [
    # A warm kernel is a fork of the template (`python -c SOURCE`), not a new
    # `python -m ipykernel_launcher`.
    WARM_MARKER.replace("NAME", "first_warm"),
    """
import os, random, sys, builtins
import numpy as np
import torch
import torch.nn.functional as F
leaked_global = "from the first student"
F.relu = lambda x: "PATCHED"
torch.nn.functional.softmax = None
builtins.LEAKED = 1
sys.modules["leaked_module"] = type(sys)("leaked_module")
os.environ["LEAKED_ENV"] = "1"
torch.manual_seed(123); random.seed(123); np.random.seed(123)
with open("/tmp/x", "w") as fh:
    fh.write("first")
with open("/dev/shm/y", "w") as fh:
    fh.write("first")
with open("from_first.txt", "w") as fh:
    fh.write("first")
first_pid = os.getpid()
first_patched = F.relu(torch.tensor([-1.0]))
""",
]
FIRST_NAMES = ["first_warm", "first_pid", "first_patched"]

SECOND = [
    WARM_MARKER.replace("NAME", "second_warm"),
    """
import os, random, sys, builtins
import numpy as np
import torch
import torch.nn.functional as F
relu = F.relu(torch.tensor([-1.0, 2.0])).tolist()
softmax_ok = torch.nn.functional.softmax is not None
has_global = "leaked_global" in globals()
has_builtin = hasattr(builtins, "LEAKED")
has_module = "leaked_module" in sys.modules
env = os.environ.get("LEAKED_ENV")
tmp_files = sorted(os.listdir("/tmp"))
shm_files = sorted(os.listdir("/dev/shm"))
scratch = sorted(os.listdir("."))
runs_seen = sorted(os.listdir(os.path.dirname(os.path.dirname(os.getcwd()))))
seeds = [random.random(), float(np.random.rand()), float(torch.rand(1))]
second_pid = os.getpid()
""",
]
SECOND_NAMES = [
    "second_warm",
    "relu",
    "softmax_ok",
    "has_global",
    "has_builtin",
    "has_module",
    "env",
    "tmp_files",
    "shm_files",
    "scratch",
    "runs_seen",
    "seeds",
    "second_pid",
]


@pytest.fixture(scope="module")
def rubric() -> Iterator[Rubric]:
    # HW3 also declares tensorflow, preloaded only for notebooks mentioning it
    # (tests/sandbox/test_warm_keras.py); these torch notebooks get the torch template.
    hw3 = load_rubric("hw3")
    yield dataclasses.replace(hw3, frameworks=tuple(f for f in hw3.frameworks if f != "tensorflow"))
    warm.close_thread_template()


def template(rubric: Rubric) -> warm.WarmTemplate:
    limits = execution_limits(rubric)
    t = warm.thread_template(warm.preload(rubric.frameworks), limits, confine.extra_env())
    assert t is not None, f"no warm template: {warm._failed}"
    return t


def run(
    tmp_path: Path,
    rubric: Rubric,
    name: str,
    cells: list[str],
    names: list[str],
    *,
    use_warm: bool = True,
    times: dict[str, float] = TIMES,
) -> tuple[NotebookRun, str | None]:
    root = tmp_path / name
    work, outbox = root / "work", root / "outbox"
    work.mkdir(parents=True)
    outbox.mkdir()
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]  # type: ignore[no-untyped-call]
    path = work / "hw3.ipynb"
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    requests = [AnswerRequest(n) for n in names]
    limits = execution_limits(rubric).model_copy(update=times)
    return notebook_in_session(
        path, work, outbox, requests, limits, "strict", frameworks=rubric.frameworks, warm=use_warm
    )


def values(result: NotebookRun) -> dict[str, Any]:
    bad = {n: a.message for n, a in result.answers.items() if a.status != "ok"}
    assert not bad, (bad, result.execution.failures)
    return {n: a.value for n, a in result.answers.items()}


def test_two_students_in_sequence_share_nothing(tmp_path: Path, rubric: Rubric) -> None:
    t = template(rubric)
    before = t.sessions
    first, _ = run(tmp_path, rubric, "first", FIRST, FIRST_NAMES)
    got1 = values(first)
    assert got1["first_warm"] is True and got1["first_patched"] == "PATCHED"
    second, _ = run(tmp_path, rubric, "second", SECOND, SECOND_NAMES)
    got = values(second)
    assert template(rubric) is t and t.sessions == before + 2  # one template, two forks
    assert got["second_warm"] is True
    assert got["relu"] == [0.0, 2.0] and got["softmax_ok"] is True
    assert not got["has_global"] and not got["has_builtin"] and not got["has_module"]
    assert got["env"] is None
    assert "x" not in got["tmp_files"] and got["shm_files"] == []
    assert got["scratch"] == ["hw3.ipynb"]
    assert len(got["runs_seen"]) == 1  # only its own run directory
    # The same student cold: same seeds (the harness seeds every kernel alike).
    cold, _ = run(tmp_path, rubric, "cold", SECOND, SECOND_NAMES, use_warm=False)
    got_cold = values(cold)
    assert got_cold["second_warm"] is False
    assert got["seeds"] == got_cold["seeds"]
    for key in ("relu", "has_global", "env", "shm_files", "scratch"):
        assert got[key] == got_cold[key], key


def test_timeout_then_memory_then_a_normal_student(tmp_path: Path, rubric: Rubric) -> None:
    t = template(rubric)
    fast = {**TIMES, "cell_timeout": 3, "interrupt_grace": 2}
    looping, limit = run(
        tmp_path,
        rubric,
        "loop",
        ["a = 1", "while True:\n    pass", "b = 2"],
        ["a", "b"],
        times=fast,
    )
    ex = looping.execution
    assert [(f.cell, f.kind) for f in ex.failures] == [(2, "timeout")]
    assert "did not finish within 3 s" in ex.failures[0].evalue
    assert values(looping) == {"a": 1, "b": 2} and limit is None

    small = dataclasses.replace(rubric, limits=rubric.limits.model_copy(update={"memory_mb": 400}))
    hog, limit = run(
        tmp_path,
        rubric=small,
        name="hog",
        cells=["a = 1", "x = bytearray(2 * 2**30)\nx[::4096] = b'x' * len(x[::4096])", "b = 2"],
        names=["a", "b"],
    )
    assert limit == "the 400 MiB memory limit"
    hog = with_limit(hog, limit)
    assert hog.execution.limit_hit == "stopped at the 400 MiB memory limit in cell 2"
    assert [(f.cell, f.kind) for f in hog.execution.failures] == [(2, "limit")]
    assert hog.answers["a"].value == 1 and "it hit the 400 MiB memory limit" in (
        hog.answers["b"].message
    )

    after, limit = run(tmp_path, rubric, "after", SECOND[:1], ["second_warm"])
    assert values(after) == {"second_warm": True} and limit is None
    assert template(rubric) is t and t.alive()


CONFINED = """
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
caps = [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
no_new_privs = status["NoNewPrivs"].strip()
ids = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]
userns = libc.unshare(0x10000000) == 0
mountns = libc.unshare(0x00020000) == 0
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
interfaces = sorted(name for _, name in socket.if_nameindex())
hostname_ok = socket.gethostname().startswith("sandbox-")
try:
    os.kill(1, 9)
    kill_init = "sent"
except OSError as exc:
    kill_init = type(exc).__name__
control = [p for p in os.listdir("/tmp") if p.startswith("gwt-")]
control = [os.listdir(os.path.join("/tmp", p)) for p in control]
"""
CONFINED_NAMES = [
    "caps",
    "no_new_privs",
    "ids",
    "userns",
    "mountns",
    "pids",
    "interfaces",
    "hostname_ok",
    "kill_init",
    "control",
]


def test_warm_kernel_is_confined_like_a_cold_one(tmp_path: Path, rubric: Rubric) -> None:
    """Same uid, no capabilities, no_new_privs, no new user or mount namespace, only its
    own PID namespace and loopback; of the template's directory only its own run dir."""
    hot = values(run(tmp_path, rubric, "warm", [CONFINED], CONFINED_NAMES)[0])
    cold = values(run(tmp_path, rubric, "cold", [CONFINED], CONFINED_NAMES, use_warm=False)[0])
    assert hot["caps"] == ["0000000000000000"] * 5
    assert hot["userns"] is False and hot["mountns"] is False
    for key in CONFINED_NAMES[:-1]:
        if key != "pids":
            assert hot[key] == cold[key], key
    assert hot["pids"][:2] == [1, 2] and cold["pids"][:2] == [1, 2]
    assert all(names == ["r"] for names in hot["control"])  # no control socket dir


def test_unusable_template_falls_back_to_cold(
    tmp_path: Path, rubric: Rubric, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where forked children cannot enter their namespaces (simulated: unshare gets an
    invalid flag), the template's start-up probe fails and the cold path grades."""
    broken = warm.TEMPLATE_SOURCE.replace(
        "_CLONE_NEWUSER = 0x10000000", "_CLONE_NEWUSER = 0x10000000 | 0x1"
    )
    assert broken != warm.TEMPLATE_SOURCE
    monkeypatch.setattr(warm, "TEMPLATE_SOURCE", broken)
    with ThreadPoolExecutor(1) as pool:  # a thread without a template yet
        job = pool.submit(run, tmp_path, rubric, "fallback", FIRST[:1], ["first_warm"])
        result, _ = job.result()
    try:
        assert values(result) == {"first_warm": False}
        assert any("cannot be confined" in why for why in warm._failed.values())
    finally:
        warm._failed.clear()


# -- module workers (HW1/HW2) ---------------------------------------------------------

# argv[1] of a fork of the template (`python -c SOURCE`) is "-c"; of a cold worker
# (`python -s -P -c BOOTSTRAP`) it is "-s".
MODULE_WARM = "open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1] == b'-c'"
FIRST_MODULE = f"""

import builtins, os, sys
import numpy as np
import torch
import torch.nn.functional as F
np.maximum = lambda *a, **k: "PATCHED"
np.sum = lambda *a, **k: -1.0
np.random.seed = None
torch.relu = None
F.relu = lambda x: "PATCHED"
builtins.LEAKED = 1
sys.modules["leaked_module"] = type(sys)("leaked_module")
os.environ["LEAKED_ENV"] = "1"
for path in ("/tmp/x", "/dev/shm/y", "from_first.txt"):
    with open(path, "w") as fh:
        fh.write("first")

def probe():
    return {{"warm": {MODULE_WARM}, "patched": np.maximum(1, 2) == "PATCHED"}}
"""
SECOND_MODULE = f"""

def probe():
    import builtins, os, sys
    import numpy as np
    import torch
    import torch.nn.functional as F
    return {{
        "warm": {MODULE_WARM},
        "maximum": np.maximum(np.array([-1.0, 2.0]), 0.0).tolist(),
        "sum": float(np.sum(np.ones(3))),
        "seed_ok": np.random.seed is not None and torch.relu is not None,
        "relu": F.relu(torch.tensor([-1.0, 2.0])).tolist(),
        "has_builtin": hasattr(builtins, "LEAKED"),
        "has_module": "leaked_module" in sys.modules,
        "env": os.environ.get("LEAKED_ENV"),
        "tmp_x": os.path.exists("/tmp/x"),
        "shm": sorted(os.listdir("/dev/shm")),
        "scratch": sorted(os.listdir(".")),
        "cwd_on_path": "" in sys.path or "." in sys.path,
        "uid": os.getuid(),
    }}
"""
HANGING_MODULE = """
import os, signal

def hang(x):
    with open("/tmp/hung", "w") as fh:
        fh.write("x")
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass

def tmp_files(x):
    return sorted(os.listdir("/tmp")).count("hung")

def double(x):
    return 2 * x
"""


@pytest.fixture(scope="module")
def hw2() -> Iterator[tuple[Rubric, list[Call], str]]:
    rubric = load_rubric("hw2")
    assert rubric.solution is not None
    calls = rubric.calls(load_expected(rubric).values)
    yield rubric, calls, (rubric.solution / "layers.py").read_text()
    warm.close_thread_template()


def run_layers(
    tmp_path: Path,
    rubric: Rubric,
    name: str,
    source: str,
    calls: list[Call],
    *,
    use_warm: bool = True,
    times: dict[str, float] | None = None,
) -> ModuleRun:
    root = tmp_path / name
    work, outbox = root / "work", root / "outbox"
    work.mkdir(parents=True)
    outbox.mkdir()
    (work / "layers.py").write_text(source)
    limits = execution_limits(rubric).model_copy(update=times or {})
    with open_session(work, outbox, limits, "strict", rubric.frameworks, warm=use_warm) as box:
        assert isinstance(box, WarmSession) is use_warm
        return run_module(
            work / "layers.py",
            work,
            outbox,
            box.runtime / "inbox",
            calls,
            limits,
            launcher=box.worker_launcher,
            env=box.worker_env(),
            limit_hit=box.limit_hit,
        )


def same(a: Any, b: Any) -> bool:
    """Exact equality of decoded values (arrays by dtype, shape and bits)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def same_results(got: ModuleRun, want: ModuleRun, ids: list[str]) -> list[str]:
    """The call ids whose results differ (status, message, value, arguments after)."""
    differ = []
    for i in ids:
        a, b = got.results[i], want.results[i]
        if (a.status, a.message, a.mutated) != (b.status, b.message, b.mutated) or not (
            same(a.value, b.value) and same(a.args_after, b.args_after)
        ):
            differ.append(i)
    return differ


def test_module_warm_and_cold_give_the_same_results(
    tmp_path: Path, hw2: tuple[Rubric, list[Call], str]
) -> None:
    rubric, calls, solution = hw2
    hot = run_layers(tmp_path, rubric, "warm", solution, calls)
    cold = run_layers(tmp_path, rubric, "cold", solution, calls, use_warm=False)
    ids = [c.id for c in calls]
    assert hot.import_error is None and cold.import_error is None
    assert all(hot.results[i].status == "ok" for i in ids), hot.results
    assert same_results(hot, cold, ids) == []
    assert hot.warnings == cold.warnings == ()


def test_two_module_students_in_sequence_share_nothing(
    tmp_path: Path, hw2: tuple[Rubric, list[Call], str]
) -> None:
    rubric, calls, solution = hw2
    t = template(rubric)
    before = t.sessions
    probe = [Call("probe", "probe")]
    first = run_layers(tmp_path, rubric, "first", solution + FIRST_MODULE, probe + calls)
    assert first.import_error is None
    assert first.results["probe"].value == {"warm": True, "patched": True}
    assert any(first.results[c.id].status != "ok" for c in calls)  # its patches bit
    second = run_layers(tmp_path, rubric, "second", solution + SECOND_MODULE, probe + calls)
    assert template(rubric) is t and t.sessions == before + 2  # one template, two forks
    got = second.results["probe"].value
    assert got == {
        "warm": True,
        "maximum": [0.0, 2.0],
        "sum": 3.0,
        "seed_ok": True,
        "relu": [0.0, 2.0],
        "has_builtin": False,
        "has_module": False,
        "env": None,
        "tmp_x": False,
        "shm": [],
        "scratch": ["layers.py"],
        "cwd_on_path": False,
        "uid": 65534,
    }, got
    cold = run_layers(
        tmp_path, rubric, "cold", solution + SECOND_MODULE, probe + calls, use_warm=False
    )
    want = cold.results["probe"].value
    assert {k: v for k, v in got.items() if k != "warm"} == {
        k: v for k, v in want.items() if k != "warm"
    }
    assert want["warm"] is False
    ids = [c.id for c in calls]
    assert all(second.results[i].status == "ok" for i in ids), second.results
    assert same_results(second, cold, ids) == []


def test_module_hung_call_restarts_a_fresh_fork(
    tmp_path: Path, hw2: tuple[Rubric, list[Call], str]
) -> None:
    rubric, calls, solution = hw2
    t = template(rubric)
    x = np.arange(3.0)
    fast = {"import_timeout": 20, "call_timeout": 1, "module_timeout": 120}
    hanging = [
        Call("d0", "double", (x,)),
        Call("h0", "hang", (x,)),
        Call("h1", "hang", (x,)),
        Call("t0", "tmp_files", (x,)),
        Call("d1", "double", (x,)),
    ]
    hung = run_layers(tmp_path, rubric, "hang", HANGING_MODULE, hanging, times=fast)
    r = hung.results
    assert r["h0"].status == "timeout" and "did not finish within 1 s" in r["h0"].message
    assert r["h1"].status == "not_run" and "within 1 s" in r["h1"].message
    assert r["t0"].status == "ok" and r["t0"].value == 0  # a fresh fork: a fresh /tmp
    assert r["d0"].status == r["d1"].status == "ok"
    assert same(r["d1"].value, 2 * x)
    # The next student on the same template is fine.
    after = run_layers(tmp_path, rubric, "after", solution, calls[:6])
    assert after.import_error is None
    assert [after.results[c.id].status for c in calls[:6]] == ["ok"] * 6
    assert template(rubric) is t and t.alive()


def test_module_session_is_warm_by_default(
    tmp_path: Path, hw2: tuple[Rubric, list[Call], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rubric = hw2[0]
    limits = execution_limits(rubric)
    work, outbox = tmp_path / "w", tmp_path / "o"
    work.mkdir()
    outbox.mkdir()
    monkeypatch.delenv(warm.ENV_SWITCH, raising=False)
    with open_session(work, outbox, limits, "strict", rubric.frameworks) as box:
        assert isinstance(box, WarmSession) is warm.DEFAULT_ON
    monkeypatch.setenv(warm.ENV_SWITCH, "0")
    with open_session(work, outbox, limits, "strict", rubric.frameworks) as box:
        assert isinstance(box, SandboxSession)


def test_files_at_colab_or_kaggle_paths_take_the_cold_path(
    tmp_path: Path, hw2: tuple[Rubric, list[Call], str]
) -> None:
    # The warm child's root is the template's: a bind at /kaggle/input needs a new one.
    rubric = hw2[0]
    work, outbox = tmp_path / "w", tmp_path / "o"
    work.mkdir()
    outbox.mkdir()
    (tmp_path / "train.csv").write_text("a\n")
    absolute = ((tmp_path / "train.csv", "/kaggle/input/comp/train.csv"),)
    limits = execution_limits(rubric)
    with open_session(
        work, outbox, limits, "strict", rubric.frameworks, warm=True, absolute=absolute
    ) as box:
        assert isinstance(box, SandboxSession)
        assert box.data_binds == absolute


def test_module_memory_limit_is_named_and_the_next_call_runs(
    tmp_path: Path, hw2: tuple[Rubric, list[Call], str]
) -> None:
    rubric, _, _ = hw2
    t = template(rubric)
    small = dataclasses.replace(rubric, limits=rubric.limits.model_copy(update={"memory_mb": 400}))
    source = HANGING_MODULE + (
        "\ndef hog(x):\n    b = bytearray(2 * 2**30)\n    b[::4096] = b'x' * len(b[::4096])\n"
    )
    x = np.arange(3.0)
    calls = [Call("m0", "hog", (x,)), Call("d0", "double", (x,))]
    hogged = run_layers(tmp_path, small, "hog", source, calls)
    assert hogged.results["m0"].status == "error"
    assert "it hit the 400 MiB memory limit" in hogged.results["m0"].message
    assert hogged.results["d0"].status == "ok" and same(hogged.results["d0"].value, 2 * x)
    assert template(rubric) is t and t.alive()


def test_templates_left_by_a_killed_grader_are_swept(tmp_path: Path) -> None:
    """A grader killed with SIGKILL leaves its template's tmpfs mounts and files; the next
    one unmounts and removes them, and leaves a live grader's and unowned ones alone."""
    from grader.sandbox.mounts import mount_tmpfs

    dead, alive, unowned = tmp_path / "gwt-dead", tmp_path / "gwt-alive", tmp_path / "gwt-new"
    for base in (dead, alive, unowned):
        (base / "r" / "run" / "work").mkdir(parents=True)
    mount_tmpfs(dead / "r", 2**20, 0, 0)
    (dead / "r" / "run" / "work").mkdir(parents=True)
    mount_tmpfs(dead / "r" / "run" / "work", 2**20, 65534, 65534)
    (dead / "r" / "run" / "work" / "notebook.ipynb").write_text("{}")
    # a pid that is running, but with another start time: the pid was reused
    (dead / warm.OWNER_FILE).write_text(f"{os.getpid()} 1\n")
    (alive / warm.OWNER_FILE).write_text(f"{os.getpid()} {warm.process_start(os.getpid())}\n")

    assert warm.sweep_stale_templates(tmp_path) == [dead]
    assert not dead.exists() and alive.is_dir() and unowned.is_dir()
    mounted = Path("/proc/self/mountinfo").read_text()
    assert str(dead) not in mounted
