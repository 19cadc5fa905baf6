"""Sandbox overhead per start: confined vs plain, for a bare interpreter and a kernel.

Run as root on the grading machine::

    .venv/bin/python bench/bench_sandbox.py [--runs 20] [--kernel-runs 5]

Prints medians in milliseconds, the overhead and the ratio sandboxed/plain for:

* ``python -c pass`` started by the grader (the launcher's pure cost: enter.py, cgroup
  join, privilege drop, bwrap namespaces and binds);
* a whole session (cgroup creation, tmpfs quotas, start, teardown) around that start;
* an ipykernel per submission: session, ``start_kernel``, ``wait_for_ready``, shutdown
  (IPC when confined, TCP plain).

Runs are interleaved (plain, sandboxed, ...) and the overhead is the median of the paired
differences, so load from other jobs on the machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from grader.sandbox import ExecutionLimits
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.protections import detect_protections

MS = 1000.0


def paired_ms(fns: list[Callable[[], None]], runs: int) -> list[list[float]]:
    """Wall times in ms of each function, run interleaved so load swings hit all alike."""
    for fn in fns:
        fn()  # warm the page cache
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * MS)
    return times


def summary(name: str, plain: list[float], boxed: list[float]) -> str:
    """Medians, the median of the paired differences, and the ratio of medians."""
    a, b = statistics.median(plain), statistics.median(boxed)
    diff = statistics.median(y - x for x, y in zip(plain, boxed, strict=True))
    return f"{name:42} {a:9.1f} {b:11.1f} {diff:12.1f} {b / a:6.2f}"


def _dirs(base: Path, i: int) -> tuple[Path, Path]:
    d = base / f"s{i}"
    return d / "scratch", d / "outbox"


async def _kernel_ready(box: SandboxSession) -> None:
    km = AsyncKernelManager(
        kernel_name="python3",
        transport=box.transport,
        ip=box.ip,
        connection_file=str(box.connection_file),
    )
    spec = km.kernel_spec
    assert spec is not None
    spec.argv = box.launcher(spec.argv)
    spec.interrupt_mode = "message"
    await km.start_kernel(cwd=str(box.scratch), env=box.env())
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--kernel-runs", type=int, default=5)
    args = ap.parse_args()

    prot = detect_protections()
    print(f"protections: {prot}")
    if prot.missing():
        print("missing:", "; ".join(prot.missing()))
    base = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    cmd = [sys.executable, "-c", "pass"]
    counter = iter(range(10**6))

    def plain() -> None:
        subprocess.run(cmd, check=True)

    scratch, outbox = _dirs(base, 0)
    with SandboxSession(scratch, outbox, None, ExecutionLimits(), "permissive") as box:

        def confined() -> None:
            subprocess.run(box.launcher(cmd), env=box.env(), check=True)

        def whole_session() -> None:
            s, o = _dirs(base, next(counter) + 1)
            with SandboxSession(s, o, None, ExecutionLimits(), "permissive") as b:
                subprocess.run(b.launcher(cmd), env=b.env(), check=True)

        t_plain, t_conf, t_session = paired_ms([plain, confined, whole_session], args.runs)

    def kernel(mode: str) -> Callable[[], None]:
        def start() -> None:
            s, o = _dirs(base, next(counter) + 1)
            with SandboxSession(s, o, None, ExecutionLimits(), mode) as b:  # type: ignore[arg-type]
                asyncio.run(_kernel_ready(b))

        return start

    k_plain, k_conf = paired_ms([kernel("off"), kernel("permissive")], args.kernel_runs)

    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'what':42} {'plain ms':>9} {'sandbox ms':>11} {'overhead ms':>12} {'ratio':>6}")
    print(summary("python -c pass", t_plain, t_conf))
    print(summary("python -c pass + session set-up/teardown", t_plain, t_session))
    print(summary("ipykernel: session, start, ready, shutdown", k_plain, k_conf))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
