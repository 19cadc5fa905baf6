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
import pytest

from grader.models import AnswerRequest, NotebookRun
from grader.rubric import Rubric, load_rubric
from grader.sandbox import warm
from grader.sandbox.isolation import detect_protections
from grader.sandbox.notebook import RunLimits
from grader.sandbox.run import run_sandboxed, sandbox_env, sandbox_limits, with_limit

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not detect_protections().complete,
    reason="warm starts need root, bubblewrap and a writable cgroup (as in CI)",
)

LIMITS = RunLimits(cell_timeout_s=20, interrupt_grace_s=3, harvest_timeout_s=20)

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
    yield load_rubric("hw3")
    warm.close_thread_template()


def template(rubric: Rubric) -> warm.WarmTemplate:
    t = warm.thread_template(warm.preload_for(rubric), sandbox_limits(rubric), sandbox_env())
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
    limits: RunLimits = LIMITS,
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
    return run_sandboxed(path, work, outbox, rubric, limits, "strict", requests, warm=use_warm)


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
    fast = dataclasses.replace(LIMITS, cell_timeout_s=3, interrupt_grace_s=2)
    looping, limit = run(
        tmp_path,
        rubric,
        "loop",
        ["a = 1", "while True:\n    pass", "b = 2"],
        ["a", "b"],
        limits=fast,
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
