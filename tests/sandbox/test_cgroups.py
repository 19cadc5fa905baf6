"""cgroup detection and control: v2 against a fake tree in tmp_path, v1 for real as root."""

from __future__ import annotations

import errno
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from grader.sandbox import cgroups
from grader.sandbox.cgroups import CgroupV1, CgroupV2, detect_cgroup, format_bytes

# /proc/self/mountinfo and /proc/self/cgroup as seen on these machines (hybrid layout).
HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {root}/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / {root}/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / {root}/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / {root}/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / {root}/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
8:pids:/
6:freezer:/
4:memory:/process_api/abc
1:cpu:/
0::/
"""


def _fake_v2(tmp_path: Path, controllers: str = "cpu io memory pids") -> tuple[Path, Path, Path]:
    root = tmp_path / "cg2"
    own = root / "grader.slice"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text(controllers + "\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n")
    proc_cgroup = tmp_path / "cgroup"
    proc_cgroup.write_text("0::/grader.slice\n")
    return own, mountinfo, proc_cgroup


def test_format_bytes() -> None:
    assert format_bytes(2 * 2**30) == "2 GiB"
    assert format_bytes(512 * 2**20) == "512 MiB"
    assert format_bytes(1536 * 2**20) == "1.5 GiB"
    assert format_bytes(100) == "100 bytes"


def test_detect_v2_only(tmp_path: Path) -> None:
    own, mountinfo, proc_cgroup = _fake_v2(tmp_path)
    support = detect_cgroup(mountinfo=mountinfo, proc_cgroup=proc_cgroup, parent_override="")
    assert support.version == "v2"
    assert support.parents == {"unified": own}


def test_detect_hybrid_prefers_v1_when_v2_has_only_hugetlb(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    for c in ("cpu", "memory/process_api/abc", "freezer", "pids", "unified"):
        (root / c).mkdir(parents=True)
    (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(HYBRID_MOUNTINFO.format(root=root))
    proc_cgroup = tmp_path / "cgroup"
    proc_cgroup.write_text(HYBRID_CGROUP)
    support = detect_cgroup(mountinfo=mountinfo, proc_cgroup=proc_cgroup, parent_override="")
    assert support.version == "v1"
    assert support.parents["memory"] == root / "memory" / "process_api" / "abc"
    assert support.parents["pids"] == root / "pids"
    assert set(support.parents) == {"memory", "pids", "cpu", "freezer"}


def test_detect_none_says_why(tmp_path: Path) -> None:
    _own, mountinfo, proc_cgroup = _fake_v2(tmp_path, controllers="cpu io")
    support = detect_cgroup(mountinfo=mountinfo, proc_cgroup=proc_cgroup, parent_override="")
    assert support.version is None
    assert "lacks the memory, pids controller(s)" in support.reason
    assert "no cgroup v1 memory, pids controller mounted" in support.reason


def test_v2_limits_counters_and_removal(tmp_path: Path) -> None:
    own, _mi, _pc = _fake_v2(tmp_path)
    cg = CgroupV2(own, "grader-t1", memory_bytes=2 * 2**30, pids=256, cpu_quota=1.5)
    d = own / "grader-t1"
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (d / "memory.max").read_text() == str(2 * 2**30)
    assert (d / "pids.max").read_text() == "256"
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert cg.procs_files() == [d / "cgroup.procs"]

    assert cg.limit_hit() is None
    (d / "pids.events").write_text("max 0\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\n")
    assert cg.limit_hit() is None  # hitting memory.max (reclaim) is not a kill
    (d / "pids.events").write_text("max 3\n")
    assert cg.limit_hit() == "the 256-process limit"
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert cg.limit_hit() == "the 2 GiB memory limit"

    # kill_all: a real process listed in the fake cgroup.procs is killed
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reaper = threading.Thread(target=proc.wait)
    reaper.start()
    (d / "cgroup.procs").write_text(f"{proc.pid}\n")
    (d / "cgroup.kill").write_text("")  # present since Linux 5.14 (write-only there)
    assert cg.pids() == {proc.pid}
    assert cg.kill_all(timeout=5)
    reaper.join(5)
    assert proc.returncode == -9
    assert (d / "cgroup.kill").read_text() == "1"  # the v2 one-shot kill was used

    for f in d.iterdir():  # the kernel removes these files itself on rmdir
        f.unlink()
    cg.remove()
    assert not d.exists()


def test_v2_refuses_to_share_a_cgroup_with_other_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own, _mi, _pc = _fake_v2(tmp_path)
    real_write = cgroups._write

    def kernel_like_write(path: Path, value: str) -> None:
        # v2's "no internal processes" rule: EBUSY while the parent holds processes.
        if path.name == "cgroup.subtree_control" and (own / "cgroup.procs").read_text().strip():
            raise OSError(errno.EBUSY, "Device or resource busy")
        real_write(path, value)

    monkeypatch.setattr(cgroups, "_write", kernel_like_write)
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n1\n")
    with pytest.raises(cgroups.CgroupError, match="delegated cgroup"):
        CgroupV2(own, "grader-t2", 2**30, 16, 1.0)

    # Alone in its cgroup, the grader moves itself into a leaf and enables controllers.
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def move_self(path: Path, value: str) -> None:
        if path.parent.name == "grader.self":  # the kernel empties the parent
            (own / "cgroup.procs").write_text("")
        kernel_like_write(path, value)

    monkeypatch.setattr(cgroups, "_write", move_self)
    CgroupV2(own, "grader-t3", 2**30, 16, 1.0)
    assert (own / "grader.self" / "cgroup.procs").read_text() == str(os.getpid())
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


real_v1 = pytest.mark.skipif(
    os.geteuid() != 0 or detect_cgroup().version != "v1",
    reason="needs root and writable cgroup v1 memory/pids controllers",
)


@real_v1
def test_v1_for_real_limits_and_kill_tree() -> None:
    support = detect_cgroup()
    name = f"grader-test-{os.getpid()}"
    cg = cgroups.create_cgroup(support, name, 64 * 2**20, 20, 0.5)
    assert isinstance(cg, CgroupV1)
    try:
        mem = cg.dirs["memory"]
        assert int((mem / "memory.limit_in_bytes").read_text()) == 64 * 2**20
        assert (cg.dirs["pids"] / "pids.max").read_text().strip() == "20"
        if "cpu" in cg.dirs:
            assert (cg.dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        # A process tree with a setsid grandchild, joined after the fact. The top process
        # reaps the intermediate child (which forks the grandchild, then exits) before it
        # says "ready", so from then on the tree is exactly the top and the grandchild.
        code = (
            "import os, time\n"
            "child = os.fork()\n"
            "if child == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60)\n"
            "    os._exit(0)\n"
            "os.waitpid(child, 0)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            preexec_fn=lambda: cg.add(os.getpid()),
        )
        assert proc.stdout is not None
        with proc.stdout:
            readable, _, _ = select.select([proc.stdout], [], [], 30)
            assert readable, "the process tree did not report ready within 30 s"
            assert proc.stdout.readline() == b"ready\n"
        members = cg.pids()
        assert proc.pid in members and len(members) == 2
        # The fork limit holds: a flood inside stops at pids.max.
        assert cg.limit_hit() is None
        assert cg.kill_all(timeout=5)
        proc.wait(5)
        for pid in members:
            assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    finally:
        cg.remove()
    assert not any(d.exists() for d in cg.directories())


def _is_zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
