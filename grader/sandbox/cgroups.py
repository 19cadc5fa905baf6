"""Per-submission control groups (cgroup v2 or v1): memory, process and CPU limits.

One :class:`Cgroup` is created per submission run, nested under the grader's own cgroup
(or under ``GRADER_CGROUP_PARENT`` when set). The sandboxed process joins it itself by
writing its pid into every ``cgroup.procs`` file listed by :meth:`Cgroup.procs_files`
(see :mod:`grader.sandbox.enter`), so every descendant (including ``setsid`` or
daemonised children) is accounted, limited, and killed by :meth:`Cgroup.kill_all`.

Only the standard files of the kernel's cgroup interfaces are used, so both versions can
be exercised against a fake tree of plain files (see ``tests/sandbox/test_cgroups.py``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.sandbox.errors import CgroupError

CgroupVersion = Literal["v1", "v2"]

#: cgroup v1 controllers the sandbox needs (``cpu`` and ``freezer`` are used when present).
V1_REQUIRED = ("memory", "pids")
V1_OPTIONAL = ("cpu", "freezer")
#: cgroup v2 controllers the sandbox needs (``cpu`` is used when available).
V2_REQUIRED = ("memory", "pids")

CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupSupport:
    """What :func:`detect_cgroup` found.

    ``version`` is ``None`` when no usable, writable cgroup hierarchy with the memory and
    pids controllers exists; ``reason`` then says why in words. ``parents`` maps each
    controller (v1) or ``"unified"`` (v2) to the directory under which session cgroups
    are created.
    """

    version: CgroupVersion | None
    reason: str = ""
    parents: dict[str, Path] = field(default_factory=dict)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii", errors="replace")


def _write(path: Path, value: str) -> None:
    # cgroup files want one write(2) per value. O_CREAT is harmless on cgroupfs (the
    # files exist) and lets the same code run against a fake tree of plain files.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode("ascii"))
    finally:
        os.close(fd)


def _keyed(path: Path) -> dict[str, int]:
    """Parse a flat-keyed cgroup file (``key value`` per line) such as memory.events."""
    out: dict[str, int] = {}
    try:
        text = _read(path)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _int_file(path: Path) -> int | None:
    try:
        text = _read(path).strip()
    except OSError:
        return None
    return int(text) if text.lstrip("-").isdigit() else None


def format_bytes(n: int) -> str:
    """``2147483648`` -> ``"2 GiB"``; used in the words of :meth:`Cgroup.limit_hit`."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
            return f"{text} {unit}"
    return f"{n} bytes"


def _parse_mounts(mountinfo: str) -> tuple[dict[str, Path], Path | None]:
    """Return ({v1 controller: mount point}, v2 mount point) from /proc/self/mountinfo."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mount_point = Path(fields[4].replace("\\040", " "))
        fstype, superopts = rfields[0], rfields[2]
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for opt in superopts.split(","):
                if opt in V1_REQUIRED + V1_OPTIONAL + ("cpuacct",):
                    v1.setdefault(opt, mount_point)
    return v1, v2


def _parse_proc_cgroup(text: str) -> tuple[dict[str, str], str | None]:
    """Return ({v1 controller: own path}, own v2 path) from /proc/self/cgroup."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hier, controllers, path = parts
        if hier == "0" and controllers == "":
            v2 = path
        else:
            for c in controllers.split(","):
                v1[c] = path
    return v1, v2


def _under(mount: Path, own: str) -> Path:
    return mount / own.lstrip("/")


def detect_cgroup(
    *,
    mountinfo: Path = Path("/proc/self/mountinfo"),
    proc_cgroup: Path = Path("/proc/self/cgroup"),
    parent_override: str | None = None,
) -> CgroupSupport:
    """Find a writable cgroup hierarchy with the memory and pids controllers.

    Prefers v2 when the unified hierarchy offers ``memory`` and ``pids`` (a v2-only
    system); otherwise uses the v1 ``memory``/``pids`` (and ``cpu``/``freezer``)
    hierarchies, as on hybrid machines where v2 only carries ``hugetlb``.
    ``parent_override`` (default: ``$GRADER_CGROUP_PARENT``) names a delegated v2 cgroup
    directory to nest sessions under, for systems where the grader's own cgroup has
    other processes in it.
    """
    if parent_override is None:
        parent_override = os.environ.get("GRADER_CGROUP_PARENT") or None
    try:
        v1_mounts, v2_mount = _parse_mounts(_read(mountinfo))
        v1_own, v2_own = _parse_proc_cgroup(_read(proc_cgroup))
    except OSError as exc:
        return CgroupSupport(None, f"cannot read the cgroup layout: {exc}")

    reasons: list[str] = []
    if v2_mount is not None:
        parent = (
            Path(parent_override)
            if parent_override
            else _under(v2_mount, v2_own if v2_own is not None else "/")
        )
        try:
            available = set(_read(parent / "cgroup.controllers").split())
        except OSError as exc:
            available = set()
            reasons.append(f"cgroup v2: cannot read {parent}/cgroup.controllers ({exc})")
        missing = [c for c in V2_REQUIRED if c not in available]
        if not missing and os.access(parent, os.W_OK):
            return CgroupSupport("v2", "", {"unified": parent})
        if missing:
            reasons.append(f"cgroup v2 at {v2_mount} lacks the {', '.join(missing)} controller(s)")
        else:
            reasons.append(f"cgroup v2 directory {parent} is not writable")

    parents: dict[str, Path] = {}
    for c in V1_REQUIRED + V1_OPTIONAL:
        if c in v1_mounts:
            parents[c] = _under(v1_mounts[c], v1_own.get(c, "/"))
    missing = [c for c in V1_REQUIRED if c not in parents]
    if missing:
        reasons.append(f"no cgroup v1 {', '.join(missing)} controller mounted")
        return CgroupSupport(None, "; ".join(reasons))
    unwritable = [c for c in V1_REQUIRED if not os.access(parents[c], os.W_OK)]
    if unwritable:
        reasons.append(f"cgroup v1 {', '.join(unwritable)} not writable (not root?)")
        return CgroupSupport(None, "; ".join(reasons))
    parents = {c: p for c, p in parents.items() if os.access(p, os.W_OK)}
    return CgroupSupport("v1", "", parents)


class Cgroup(ABC):
    """One session's cgroup: limits set at creation, counters read after the run."""

    version: CgroupVersion

    def __init__(self, memory_bytes: int, pids: int, cpu_quota: float) -> None:
        self.memory_bytes = memory_bytes
        self.pids_max = pids
        self.cpu_quota = cpu_quota

    @abstractmethod
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its pid to in order to join."""

    @abstractmethod
    def directories(self) -> list[Path]:
        """Every directory of this cgroup (one per v1 hierarchy, one for v2)."""

    @abstractmethod
    def limit_hit(self) -> str | None:
        """Which limit stopped something, in words, or ``None``."""

    @abstractmethod
    def _freeze(self, frozen: bool) -> bool:
        """Freeze or thaw the cgroup; return ``False`` when freezing is unsupported."""

    def add(self, pid: int) -> None:
        """Move ``pid`` into this cgroup (the sandbox normally joins by itself)."""
        for f in self.procs_files():
            _write(f, str(pid))

    def pids(self) -> set[int]:
        """Every process currently in the cgroup (union over hierarchies)."""
        out: set[int] = set()
        for d in self.directories():
            try:
                text = _read(d / "cgroup.procs")
            except OSError:
                continue
            out.update(int(x) for x in text.split() if x.isdigit())
        # A fake tree (tests) keeps listing dead pids; the kernel never does.
        return {p for p in out if os.path.exists(f"/proc/{p}")}

    def kill_all(self, timeout: float = 5.0) -> bool:
        """SIGKILL every process in the cgroup, freezing it first so none can fork away.

        Returns ``True`` when the cgroup is empty afterwards.
        """
        deadline = time.monotonic() + timeout
        while True:
            victims = self.pids()
            if not victims:
                return True
            frozen = self._freeze(True)
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                except PermissionError:
                    pass
            if frozen:
                self._freeze(False)
            if time.monotonic() > deadline:
                return not self.pids()
            time.sleep(0.005)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill what is left and remove the cgroup directories (children first)."""
        self.kill_all(timeout)
        deadline = time.monotonic() + timeout
        for d in self.directories():
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.EAGAIN):
                        raise CgroupError(f"cannot remove {d}: {exc}") from exc
                    if time.monotonic() > deadline:
                        raise CgroupError(f"cannot remove {d}: still busy") from exc
                    self.kill_all(0.1)
                    time.sleep(0.01)

    def _words_memory(self) -> str:
        return f"the {format_bytes(self.memory_bytes)} memory limit"

    def _words_pids(self) -> str:
        return f"the {self.pids_max}-process limit"


class CgroupV2(Cgroup):
    """A cgroup in the unified (v2) hierarchy."""

    version: CgroupVersion = "v2"

    def __init__(
        self, parent: Path, name: str, memory_bytes: int, pids: int, cpu_quota: float
    ) -> None:
        super().__init__(memory_bytes, pids, cpu_quota)
        self.path = parent / name
        enabled = _enable_v2_controllers(parent)
        try:
            self.path.mkdir(mode=0o755)
        except OSError as exc:
            raise CgroupError(f"cannot create {self.path}: {exc}") from exc
        try:
            _write(self.path / "memory.max", str(memory_bytes))
            if (self.path / "memory.swap.max").exists():
                _write(self.path / "memory.swap.max", "0")
            if (self.path / "memory.oom.group").exists():
                _write(self.path / "memory.oom.group", "1")
            _write(self.path / "pids.max", str(pids))
            if cpu_quota > 0 and "cpu" in enabled:
                quota = max(1000, int(cpu_quota * CPU_PERIOD_US))
                _write(self.path / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        except OSError as exc:
            self.path.rmdir()
            raise CgroupError(f"cannot set limits in {self.path}: {exc}") from exc

    def procs_files(self) -> list[Path]:
        return [self.path / "cgroup.procs"]

    def directories(self) -> list[Path]:
        return [self.path]

    def limit_hit(self) -> str | None:
        mem = _keyed(self.path / "memory.events")
        if mem.get("oom_kill", 0) > 0 or mem.get("oom_group_kill", 0) > 0:
            return self._words_memory()
        if _keyed(self.path / "pids.events").get("max", 0) > 0:
            return self._words_pids()
        return None

    def _freeze(self, frozen: bool) -> bool:
        f = self.path / "cgroup.freeze"
        if not f.exists():
            return False
        try:
            _write(f, "1" if frozen else "0")
        except OSError:
            return False
        return True

    def kill_all(self, timeout: float = 5.0) -> bool:
        kill = self.path / "cgroup.kill"
        if kill.exists() and self.pids():
            with contextlib.suppress(OSError):
                _write(kill, "1")
        return super().kill_all(timeout)


def _enable_v2_controllers(parent: Path) -> set[str]:
    """Make memory/pids (and cpu) available to the children of ``parent``.

    v2 forbids processes in a cgroup that hands controllers to its children (except the
    root). When the grader is alone in its cgroup it moves itself into a ``grader.self``
    leaf; when other processes share it, a delegated parent is needed.
    """
    try:
        enabled = set(_read(parent / "cgroup.subtree_control").split())
        available = set(_read(parent / "cgroup.controllers").split())
    except OSError as exc:
        raise CgroupError(f"cannot read {parent}: {exc}") from exc
    wanted = [c for c in ("memory", "pids", "cpu") if c in available and c not in enabled]
    if not wanted:
        return enabled
    line = " ".join(f"+{c}" for c in wanted)
    try:
        _write(parent / "cgroup.subtree_control", line)
        return enabled | set(wanted)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise CgroupError(f"cannot enable {line} in {parent}: {exc}") from exc
    others = {int(p) for p in _read(parent / "cgroup.procs").split() if p.isdigit()} - {os.getpid()}
    if others:
        raise CgroupError(
            f"cgroup v2: {parent} also holds processes {sorted(others)[:5]}; run the grader "
            "in a delegated cgroup (systemd-run --scope -p Delegate=yes …) or set "
            "GRADER_CGROUP_PARENT to an empty writable cgroup"
        )
    leaf = parent / "grader.self"
    leaf.mkdir(exist_ok=True)
    _write(leaf / "cgroup.procs", str(os.getpid()))
    try:
        _write(parent / "cgroup.subtree_control", line)
    except OSError as exc:
        raise CgroupError(f"cannot enable {line} in {parent}: {exc}") from exc
    return enabled | set(wanted)


class CgroupV1(Cgroup):
    """One directory per v1 hierarchy (memory, pids, and cpu/freezer when present)."""

    version: CgroupVersion = "v1"

    def __init__(
        self,
        parents: dict[str, Path],
        name: str,
        memory_bytes: int,
        pids: int,
        cpu_quota: float,
    ) -> None:
        super().__init__(memory_bytes, pids, cpu_quota)
        self.dirs: dict[str, Path] = {}
        created: list[Path] = []
        try:
            for controller, parent in parents.items():
                d = parent / name
                if d in created:  # co-mounted controllers share one directory
                    self.dirs[controller] = d
                    continue
                d.mkdir(mode=0o755)
                created.append(d)
                self.dirs[controller] = d
            mem = self.dirs["memory"]
            _write(mem / "memory.limit_in_bytes", str(memory_bytes))
            if (mem / "memory.memsw.limit_in_bytes").exists():
                # Without this, swap would let the student exceed the limit.
                _write(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))
            _write(self.dirs["pids"] / "pids.max", str(pids))
            cpu = self.dirs.get("cpu")
            if cpu is not None and cpu_quota > 0:
                _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(cpu / "cpu.cfs_quota_us", str(max(1000, int(cpu_quota * CPU_PERIOD_US))))
        except (OSError, KeyError) as exc:
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise CgroupError(f"cannot create cgroup {name}: {exc}") from exc

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.directories()]

    def directories(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def limit_hit(self) -> str | None:
        mem = self.dirs["memory"]
        oom = _keyed(mem / "memory.oom_control")
        if "oom_kill" in oom:
            if oom["oom_kill"] > 0:
                return self._words_memory()
        else:  # older kernels: a failed charge at the limit is the best evidence
            fails = _int_file(mem / "memory.memsw.failcnt") or _int_file(mem / "memory.failcnt")
            if fails:
                return self._words_memory()
        if _keyed(self.dirs["pids"] / "pids.events").get("max", 0) > 0:
            return self._words_pids()
        return None

    def _freeze(self, frozen: bool) -> bool:
        d = self.dirs.get("freezer")
        if d is None:
            return False
        state = "FROZEN" if frozen else "THAWED"
        try:
            _write(d / "freezer.state", state)
            if frozen:
                deadline = time.monotonic() + 1.0
                while _read(d / "freezer.state").strip() != "FROZEN":
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.001)
        except OSError:
            return False
        return True


def create_cgroup(
    support: CgroupSupport, name: str, memory_bytes: int, pids: int, cpu_quota: float
) -> Cgroup:
    """Create the session cgroup ``name`` with the given limits under ``support``."""
    if support.version == "v2":
        return CgroupV2(support.parents["unified"], name, memory_bytes, pids, cpu_quota)
    if support.version == "v1":
        return CgroupV1(support.parents, name, memory_bytes, pids, cpu_quota)
    raise CgroupError(support.reason or "no usable cgroup")


def pids_with_marker(marker: str, pids: Iterable[int] | None = None) -> list[int]:
    """Processes whose command line contains ``marker`` (for canaries and tests)."""
    found: list[int] = []
    candidates = pids if pids is not None else (int(p) for p in os.listdir("/proc") if p.isdigit())
    needle = marker.encode()
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if needle in fh.read():
                    found.append(pid)
        except OSError:
            continue
    return found
