"""The resource limits of :class:`ExecutionLimits`, applied the same way cold and warm.

Both sessions (cold :class:`grader.sandbox.isolation.SandboxSession`, warm
:class:`grader.sandbox.warm_session.WarmSession`) and the warm template take from here
what they impose on the submission's processes, so each limit is turned into its
mechanism once: the cgroup (memory, processes, CPU), the rlimits, the tmpfs quotas of
the scratch and the outbox, the size of ``/tmp`` and ``/dev/shm``, and the environment
(whose thread counts follow the CPU quota).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from grader.sandbox import cgroups
from grader.sandbox.cgroups import Cgroup
from grader.sandbox.limits import ExecutionLimits

# Variables the sandbox imposes on top of its own minimal environment: hash seeding for
# reproducible runs; one BLAS thread per kernel so parallel workers do not fight.
_EXTRA_ENV = {
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "JUPYTER_CONFIG_DIR": "/tmp/.jupyter",
}
# OpenBLAS needs these on CPUs it cannot detect, and would otherwise crash at import.
_PASSTHROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def new_cgroup(limits: ExecutionLimits, name: str) -> Cgroup:
    """A new cgroup ``name`` holding the memory, process and CPU limits."""
    return cgroups.create_cgroup(
        cgroups.detect_cgroup(), name, limits.memory_bytes, limits.processes, limits.cpu_cores
    )


def rlimits(limits: ExecutionLimits) -> dict[str, int]:
    """The rlimits every sandboxed process gets (names as ``RLIMIT_<NAME>``); no core dumps."""
    return {"fsize": limits.file_size_bytes, "nofile": limits.open_files, "core": 0}


def quotas(limits: ExecutionLimits, scratch: Path, outbox: Path) -> tuple[tuple[Path, int], ...]:
    """Each directory that becomes a size-limited tmpfs, with its size in bytes."""
    return ((scratch, limits.scratch_bytes), (outbox, limits.outbox_bytes))


def extra_env() -> dict[str, str]:
    """The variables added to every sandbox's environment, with OpenBLAS's CPU settings
    passed through from the grader's where set."""
    env = dict(_EXTRA_ENV)
    env.update({k: os.environ[k] for k in _PASSTHROUGH if k in os.environ})
    return env


def sandbox_env(limits: ExecutionLimits, extra: dict[str, str]) -> dict[str, str]:
    """The complete environment of a sandboxed kernel or worker, never the grader's own."""
    venv_bin = str(Path(sys.prefix) / "bin")
    threads = str(max(1, int(limits.cpu_cores)))
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "USER": "student",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "VIRTUAL_ENV": sys.prefix,
        "IPYTHONDIR": "/tmp/.ipython",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
        "MPLBACKEND": "agg",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        # TensorFlow's intra- and inter-op pools, read when its first op runs (after a
        # warm template forked): sized like torch's OpenMP pool.
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **extra,
    }


def launcher_env() -> dict[str, str]:
    """The environment of the launching process itself (``enter.py`` or the warm client),
    which a kernel could read at ``/proc/1/environ``: the grader's PATH stays out."""
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
