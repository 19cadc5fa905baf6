"""NVIDIA GPUs for rubrics that declare ``devices: gpu``: find them, lend them, bind them.

Never by default: device nodes are attack surface, so a GPU is exposed only to a request
with ``DeviceRequest(gpus=N)`` (``grade --gpus all|N`` and ``devices: gpu``). The design
(docs/guide/gpu.md):

* **units**: a whole GPU, or on a GPU split with MIG each MIG instance, is one unit;
  each concurrent job holds whole units (:class:`GpuPool`), shown to the kernel by
  ``CUDA_VISIBLE_DEVICES`` (UUIDs). Never MPS: its one shared server would connect jobs.
* **detection** (:func:`detect`) reads ``nvidia-smi -L`` when it runs, else
  ``/proc/driver/nvidia/gpus/*/information``; device nodes from ``/dev``; driver
  libraries from ``ldconfig -p``. Every path is under ``root`` and both commands are
  parameters, so tests use a fake device tree.
* **binds** (:func:`bwrap_args`): bubblewrap's ``--dev /dev`` holds no NVIDIA node; the
  session adds the control nodes (``nvidiactl``, ``nvidia-uvm``, ``nvidia-uvm-tools``,
  ``nvidia-modeset``, ``nvidia-caps/*``) and the lent GPUs' ``/dev/nvidiaN`` with
  ``--dev-bind``, and the driver libraries outside the already bound ``/usr``
  read-only. A job's namespace thus holds only its own GPUs' nodes.
* **memory**: CUDA has no per-process cap; :func:`gpu_env` passes an advisory one
  (``GRADER_GPU_MEMORY_MB``; TensorFlow's memory growth; JAX's fraction) that the
  in-kernel set-up applies before student code runs.
* **usage** (:class:`GpuMonitor`): ``nvidia-smi --query-compute-apps`` sampled while a
  job runs: peak memory and GPU-seconds of the job's processes.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Control nodes every CUDA process opens (present ones are bound).
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
#: Driver libraries bound in: the CUDA driver API and NVIDIA's user-space driver parts.
_LIBRARY = re.compile(r"^(libcuda\.so|libnvidia-[A-Za-z0-9_-]+\.so)")
_SMI_GPU = re.compile(r"^GPU (\d+): (.*?) \(UUID: (GPU-[0-9A-Za-z-]+)\)")
_SMI_MIG = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-[0-9A-Za-z/-]+)\)")
#: Directories bubblewrap binds already (:func:`grader.sandbox.protections.system_binds`).
_BOUND = ("/usr/",)


@dataclass(frozen=True)
class GpuUnit:
    """One unit a job may hold: a whole GPU or a MIG instance.

    ``uuid``: what ``CUDA_VISIBLE_DEVICES`` names (``GPU-…`` or ``MIG-…``); ``minor``:
    the parent GPU's ``/dev/nvidiaN`` number; ``name``: the model (and MIG profile).
    """

    uuid: str
    minor: int
    name: str
    mig: bool = False


@dataclass(frozen=True)
class GpuInventory:
    """What :func:`detect` found: the units, the device nodes, the driver libraries."""

    units: tuple[GpuUnit, ...] = ()
    control_nodes: tuple[Path, ...] = ()  # as seen on this machine (under root)
    libraries: tuple[Path, ...] = ()
    source: str = "none"  # "nvidia-smi", "/proc" or "none"
    root: Path = Path("/")

    def gpu_node(self, minor: int) -> Path:
        """The ``/dev/nvidiaN`` node of the GPU with that minor number (under root)."""
        return self.root / "dev" / f"nvidia{minor}"


def parse_smi_list(text: str, minors: Mapping[str, int] | None = None) -> list[GpuUnit]:
    """The units in ``nvidia-smi -L`` output: each GPU, or its MIG instances where it has
    them (a GPU split with MIG is lent by instance, never whole). ``minors``: GPU UUID to
    device minor (from /proc); default: the GPU's index, which is its minor on most
    machines."""
    units: list[GpuUnit] = []
    gpu: GpuUnit | None = None
    children: list[GpuUnit] = []

    def flush() -> None:
        if gpu is not None:
            units.extend(children or [gpu])

    for line in text.splitlines():
        m = _SMI_GPU.match(line)
        if m:
            flush()
            minor = (minors or {}).get(m.group(3), int(m.group(1)))
            gpu, children = GpuUnit(m.group(3), minor, m.group(2)), []
            continue
        mig = _SMI_MIG.match(line)
        if mig and gpu is not None:
            name = f"{gpu.name} MIG {mig.group(1)}"
            children.append(GpuUnit(mig.group(3), gpu.minor, name, True))
    flush()
    return units


def proc_units(root: Path) -> list[GpuUnit]:
    """Whole GPUs from ``/proc/driver/nvidia/gpus/*/information`` (no MIG view there)."""
    units: list[GpuUnit] = []
    base = root / "proc" / "driver" / "nvidia" / "gpus"
    if not base.is_dir():
        return units
    for info in sorted(base.glob("*/information")):
        fields: dict[str, str] = {}
        with contextlib.suppress(OSError):
            for line in info.read_text().splitlines():
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        uuid, minor = fields.get("GPU UUID"), fields.get("Device Minor")
        if uuid and minor and minor.isdigit():
            units.append(GpuUnit(uuid, int(minor), fields.get("Model", "NVIDIA GPU")))
    return sorted(units, key=lambda u: u.minor)


def parse_ldconfig(text: str) -> list[Path]:
    """The NVIDIA driver libraries in ``ldconfig -p`` output (``libcuda.so.1 (libc6,x86-64)
    => /usr/lib/x86_64-linux-gnu/libcuda.so.1``), each path once."""
    found: dict[str, None] = {}
    for line in text.splitlines():
        name, arrow, target = line.strip().partition(" => ")
        if arrow and _LIBRARY.match(name.split(" ", 1)[0]):
            found[target.strip()] = None
    return [Path(p) for p in found]


def _run(argv: Sequence[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def detect(
    root: Path = Path("/"),
    *,
    smi: Callable[[], str | None] | None = None,
    ldconfig: Callable[[], str | None] | None = None,
) -> GpuInventory:
    """The NVIDIA GPUs of this machine (or of the fake tree at ``root``).

    ``smi`` returns ``nvidia-smi -L``'s output (None: not available), ``ldconfig`` that
    of ``ldconfig -p``; both default to running the commands. No GPU unless the driver's
    ``/dev/nvidiactl`` exists: without it no CUDA process can start.
    """
    dev = root / "dev"
    control = tuple(dev / n for n in CONTROL_NODES if (dev / n).exists())
    caps = dev / "nvidia-caps"
    if caps.is_dir():  # MIG access capabilities
        control += tuple(sorted(caps.iterdir()))
    if not (dev / "nvidiactl").exists():
        return GpuInventory(root=root)
    from_proc = proc_units(root)
    smi_text = (smi or (lambda: _run(["nvidia-smi", "-L"])))()
    units = parse_smi_list(smi_text, {u.uuid: u.minor for u in from_proc}) if smi_text else []
    source = "nvidia-smi" if units else "/proc" if from_proc else "none"
    units = units or from_proc
    units = [u for u in units if (dev / f"nvidia{u.minor}").exists()]
    libs_text = (ldconfig or (lambda: _run(["ldconfig", "-p"])))() or ""
    return GpuInventory(
        tuple(units), control, tuple(parse_ldconfig(libs_text)), source if units else "none", root
    )


def bwrap_args(inventory: GpuInventory, units: Sequence[GpuUnit]) -> list[str]:
    """bubblewrap arguments exposing ``units`` (after ``--dev /dev``): their GPUs' nodes and
    the control nodes with ``--dev-bind``, driver libraries outside ``/usr`` read-only.

    Paths inside the sandbox are the machine's (``root`` stripped), so a fake tree maps
    ``ROOT/dev/nvidia0`` to ``/dev/nvidia0``.
    """
    args: list[str] = []
    minors = sorted({u.minor for u in units})
    nodes = [*inventory.control_nodes, *(inventory.gpu_node(m) for m in minors)]
    for node in nodes:
        args += ["--dev-bind", str(node), "/" + str(node.relative_to(inventory.root))]
    for lib in inventory.libraries:
        if not str(lib).startswith(_BOUND):
            args += ["--ro-bind-try", str(lib), str(lib)]
    return args


def gpu_env(units: Sequence[GpuUnit], memory_mb: int | None) -> dict[str, str]:
    """The kernel's environment for ``units``: which GPUs CUDA sees, and the advisory
    memory cap (applied in the kernel before student code; CUDA enforces none)."""
    env = {
        "CUDA_VISIBLE_DEVICES": ",".join(u.uuid for u in units),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        # Allocate as needed, not the whole GPU at start (TensorFlow, JAX).
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        # Fewer cached blocks held back from other jobs' view of free memory.
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    }
    if memory_mb is not None:
        env["GRADER_GPU_MEMORY_MB"] = str(memory_mb)
    return env


@dataclass(frozen=True)
class GpuGrant:
    """The units lent to one job, with what its session needs to expose them."""

    units: tuple[GpuUnit, ...]
    binds: tuple[str, ...]
    env: Mapping[str, str]


class GpuPool:
    """Whole units lent to concurrent jobs, each unit to one job at a time."""

    def __init__(self, inventory: GpuInventory, limit: int | None = None) -> None:
        self.inventory = inventory
        units = inventory.units if limit is None else inventory.units[:limit]
        self._free = list(units)
        self.size = len(units)
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def lease(
        self, count: int, memory_mb: int | None = None, timeout: float | None = None
    ) -> Iterator[GpuGrant]:
        """Hold ``count`` units for the ``with`` block (waiting for other jobs to give
        theirs back; ``timeout`` seconds at most). Raises ValueError when the pool has
        fewer units than ``count``, TimeoutError when none came free in time."""
        if count > self.size:
            raise ValueError(f"{count} GPU(s) asked for; {self.size} available to the grader")
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._free) >= count, timeout):
                raise TimeoutError(f"no {count} GPU(s) came free within {timeout} s")
            held, self._free = self._free[:count], self._free[count:]
        try:
            yield GpuGrant(
                tuple(held),
                tuple(bwrap_args(self.inventory, held)),
                gpu_env(held, memory_mb),
            )
        finally:
            with self._cond:
                self._free.extend(held)
                self._cond.notify_all()


_POOL: GpuPool | None = None
_POOL_LOCK = threading.Lock()


def configure(limit: int | None, inventory: GpuInventory | None = None) -> GpuPool:
    """Set this process's pool: ``limit`` units of this machine (None: all). Called by
    the batch for ``grade --gpus``; tests pass a fake ``inventory``."""
    global _POOL
    with _POOL_LOCK:
        _POOL = GpuPool(inventory if inventory is not None else detect(), limit)
        return _POOL


def pool() -> GpuPool:
    """This process's pool: empty (no GPU is ever exposed by default) until
    :func:`configure` (``grade --gpus``) fills it."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = GpuPool(GpuInventory())
        return _POOL


def parse_compute_apps(text: str) -> dict[int, float]:
    """pid to MiB from ``nvidia-smi --query-compute-apps=pid,used_memory
    --format=csv,noheader,nounits`` (``1234, 512``); unparsable lines are skipped."""
    out: dict[int, float] = {}
    for line in text.splitlines():
        pid, _, mib = line.partition(",")
        with contextlib.suppress(ValueError):
            out[int(pid.strip())] = out.get(int(pid.strip()), 0.0) + float(mib.strip())
    return out


def query_compute_apps() -> str | None:
    """``nvidia-smi``'s list of the processes using a GPU (None without nvidia-smi)."""
    return _run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    )


@dataclass
class GpuMonitor:
    """Samples one job's GPU use while it runs: ``pids()`` gives its processes, ``query``
    the compute-apps listing. ``usage()`` is the result's ``devices`` section."""

    units: tuple[GpuUnit, ...]
    pids: Callable[[], set[int]]
    query: Callable[[], str | None] = query_compute_apps
    interval: float = 1.0
    memory_cap_mb: int | None = None
    peak_mb: float | None = None
    gpu_seconds: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self, elapsed: float) -> None:
        """One sample: the job's memory now, and ``elapsed`` seconds of GPU time if any of
        its processes holds GPU memory."""
        text = self.query()
        if text is None:
            return
        self.samples += 1
        apps = parse_compute_apps(text)
        mine = self.pids() & set(apps)
        used = sum(apps[p] for p in mine)
        if mine:
            self.gpu_seconds += elapsed
            self.peak_mb = max(self.peak_mb or 0.0, used)

    def __enter__(self) -> GpuMonitor:
        def loop() -> None:
            last = time.monotonic()
            while not self._stop.wait(self.interval):
                now = time.monotonic()
                self.sample(now - last)
                last = now

        self._thread = threading.Thread(target=loop, name="gpu-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def usage(self) -> dict[str, Any]:
        """The ``devices`` section of a result (schema: result.schema.json)."""
        return {
            "kind": "gpu",
            "gpus": [{"uuid": u.uuid, "name": u.name, "mig": u.mig} for u in self.units],
            "memory_cap_mb": self.memory_cap_mb,
            "memory_cap_enforced": False,
            "peak_memory_mb": None if self.peak_mb is None else round(self.peak_mb, 1),
            "gpu_seconds": round(self.gpu_seconds, 1) if self.samples else None,
        }
