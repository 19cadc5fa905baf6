"""The sandbox against small hostile Python programs, checked from outside (canaries).

Each test launches ``python -c CODE`` through :meth:`SandboxSession.launcher` exactly as
the notebook runner launches a kernel, then asserts on what the grader can observe from
outside: cgroup counters, files on disk, ``/proc``, a loopback listener the test owns.
Needs root and bubblewrap (CI on these machines); without root the confined tests skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import ExecutionLimits, SandboxUnavailable, cgroups
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.protections import OFF, Protections, detect_protections

PROT = detect_protections()
# As root (CI) a missing protection is a failure, not a skip: strict mode would refuse.
confined = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def run(box: SandboxSession, code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``code`` confined, like the runner runs a kernel; return the finished process."""
    argv = box.launcher([sys.executable, "-c", textwrap.dedent(code)])
    return subprocess.run(
        argv,
        env=box.env(),
        cwd=box.scratch,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=True,  # as jupyter_client does
    )


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A batch-like tree: the student's scratch next to a secret and another student."""
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-" + secrets.token_hex(16))
    other = tmp_path / "other_student"
    other.mkdir()
    (other / "solution.ipynb").write_text("{'other': 'student'}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "hw.ipynb").write_text("{}")
    return {"secret": secret, "other": other, "scratch": scratch, "outbox": tmp_path / "outbox"}


@pytest.fixture
def box(layout: dict[str, Path]) -> Iterator[SandboxSession]:
    lim = ExecutionLimits(memory_mb=256, processes=64, scratch_bytes=16 * 2**20)
    with SandboxSession(layout["scratch"], layout["outbox"], None, lim, "strict") as s:
        yield s
    assert not s.pids()


# --- API, no privileges needed -----------------------------------------------------


def test_missing_names_each_protection() -> None:
    p = Protections(False, None, False, False, False, {"cgroup": "no memory controller"})
    words = p.missing()
    assert len(words) == 5
    assert "no memory or process limits (no writable cgroup) (no memory controller)" in words
    assert any("network" in w for w in words)
    assert Protections(True, "v1", True, True, True).missing() == []


def test_strict_refuses_and_permissive_reports(tmp_path: Path) -> None:
    weak = Protections(True, None, True, True, True, {"cgroup": "v2 lacks memory"})
    with pytest.raises(SandboxUnavailable) as err:
        SandboxSession(
            tmp_path / "s", tmp_path / "o", None, ExecutionLimits(), "strict", protections=weak
        )
    assert "no memory or process limits" in str(err.value)
    assert "v2 lacks memory" in str(err.value)
    s = SandboxSession(
        tmp_path / "s", tmp_path / "o", None, ExecutionLimits(), "permissive", protections=weak
    )
    assert s.protections.missing() == [
        "no memory or process limits (no writable cgroup) (v2 lacks memory)"
    ]


def test_off_mode_is_plain(tmp_path: Path) -> None:
    with SandboxSession(tmp_path / "s", tmp_path / "o", None, ExecutionLimits(), "off") as s:
        assert s.launcher(["python", "-V"]) == ["python", "-V"]
        assert s.transport == "tcp"
        assert s.protections == OFF
        assert "JPY_PARENT_PID" not in s.env()


def test_runtime_dir_must_fit_socket_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too long"):
        SandboxSession(tmp_path, tmp_path, tmp_path / ("x" * 100), ExecutionLimits(), "off")
    with SandboxSession(tmp_path / "s", tmp_path / "o", None, ExecutionLimits(), "off") as s:
        assert len(os.fsencode(s.ip)) + len("-65535") < 108


# --- confined ----------------------------------------------------------------------


@confined
def test_protections_complete_here() -> None:
    assert PROT.missing() == []
    assert PROT.bubblewrap and PROT.network_isolated and PROT.unprivileged_uid
    assert PROT.cgroup in ("v1", "v2")


@confined
def test_memory_bomb_stopped_and_reported(box: SandboxSession) -> None:
    progress = box.outbox / "progress"
    res = run(
        box,
        f"""
        chunks = []
        for i in range(1, 10_000):
            chunks.append(bytearray(8 * 2**20))
            with open({str(progress)!r}, "w") as fh:
                fh.write(str(8 * i))
        open({str(box.outbox / "done")!r}, "w").write("survived")
        """,
    )
    assert res.returncode != 0, res.stderr
    assert box.limit_hit() == "the 256 MiB memory limit"
    assert int(progress.read_text()) <= 256
    assert not (box.outbox / "done").exists()


@confined
def test_fork_bomb_stopped_at_pids_max(box: SandboxSession) -> None:
    marker = "forkbomb-" + secrets.token_hex(4)
    res = run(
        box,
        f"""
        import os, time  # {marker}
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                n += 1
        except OSError as exc:
            print("stopped", n, exc.errno)
        """,
    )
    words = res.stdout.split()
    assert words[0] == "stopped", res.stderr
    assert int(words[1]) < 64
    assert box.limit_hit() == "the 64-process limit"
    box.teardown()
    assert cgroups.pids_with_marker(marker) == []


def _wait_for(pred: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("bubblewrap", [True, False], ids=["bwrap+cgroup", "cgroup-only"])
@confined
def test_setsid_daemon_killed_by_teardown(layout: dict[str, Path], bubblewrap: bool) -> None:
    prot = detect_protections()
    if not bubblewrap:  # the cgroup alone must also catch escaped session leaders
        prot = Protections(False, prot.cgroup, True, False, False)
    marker = "daemon-" + secrets.token_hex(6)
    s = SandboxSession(
        layout["scratch"], layout["outbox"], None, ExecutionLimits(), "permissive", protections=prot
    )
    with s:
        code = f"""
            import os, subprocess, sys, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv(sys.executable, [sys.executable, "-c",
                             "import time; time.sleep(300)", {marker[::-1]!r}[::-1]])
                os._exit(0)
            time.sleep(300)
            """
        argv = s.launcher([sys.executable, "-c", textwrap.dedent(code)])
        proc = subprocess.Popen(argv, env=s.env(), start_new_session=True)
        try:
            daemons = _wait_for(lambda: cgroups.pids_with_marker(marker))
            for pid in daemons:
                status = Path(f"/proc/{pid}/status").read_text()
                uid_line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
                assert uid_line.split()[1] == "65534"
        finally:
            s.teardown()
            proc.wait(timeout=10)
    assert cgroups.pids_with_marker(marker) == []
    assert s.cgroup is not None
    assert not any(d.exists() for d in s.cgroup.directories())


@confined
def test_network_blocked_loopback_listener_sees_nothing(box: SandboxSession) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        res = run(
            box,
            f"""
            import socket
            for host in ("127.0.0.1", "localhost", "example.com"):
                try:
                    socket.create_connection((host, {port}), timeout=2).close()
                    print("CONNECTED", host)
                except OSError as exc:
                    print("blocked", host, type(exc).__name__)
            print(open("/proc/net/dev").read())
            """,
        )
        assert "CONNECTED" not in res.stdout
        assert res.stdout.count("blocked") == 3, res.stderr
        ifaces = [ln.split(":")[0].strip() for ln in res.stdout.splitlines() if ":" in ln]
        assert ifaces == ["lo"]
        with pytest.raises(BlockingIOError):
            listener.accept()  # the canary: no connection ever arrived
    finally:
        listener.close()


@confined
def test_cannot_read_outside_the_binds(box: SandboxSession, layout: dict[str, Path]) -> None:
    secret_path = layout["secret"]
    secret = secret_path.read_text()
    (box.scratch / "link").symlink_to(secret_path)  # a planted symlink in the submission
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    res = run(
        box,
        f"""
        import os
        found = []
        for p in ("../secret.txt", {str(secret_path)!r}, "link",
                  {str(layout["other"] / "solution.ipynb")!r}, "/etc/hostname",
                  "/work/main/rubrics", "/root", "/home"):
            try:
                print("READ", p, open(p).read())
            except OSError as exc:
                print("denied", p, type(exc).__name__)
        skip = ("/proc", "/sys", "/dev", "/usr", {sys.prefix!r})
        for root, dirs, files in os.walk("/"):
            if root.startswith(skip):
                dirs[:] = []
                continue
            for f in files:
                path = os.path.join(root, f)
                try:
                    with open(path, "rb") as fh:
                        if b"SECRET-" in fh.read(1 << 20):
                            found.append(path)
                except OSError:
                    pass
                if "secret" in f or "solution" in f:
                    found.append(path)
        print("FOUND", found)
        """,
    )
    assert "READ" not in res.stdout, res.stdout
    assert res.stdout.count("denied") == 8, res.stderr
    assert "FOUND []" in res.stdout
    assert secret not in res.stdout + res.stderr
    assert not hostname or hostname not in res.stdout.replace("sandbox", "")
    # chown of the scratch never followed the planted symlink
    assert secret_path.stat().st_uid == 0
    assert secret_path.read_text() == secret


@confined
def test_venv_read_only_scratch_writable(box: SandboxSession) -> None:
    target = Path(sys.prefix) / "lib" / f"pwned-{secrets.token_hex(4)}.py"
    res = run(
        box,
        f"""
        for p in ({str(target)!r}, "/usr/pwned", "/pwned", "mine.txt"):
            try:
                open(p, "w").write("x")
                print("WROTE", p)
            except OSError as exc:
                print("denied", p, type(exc).__name__)
        """,
    )
    assert res.stdout.split("\n")[:3] == [
        f"denied {target} OSError",
        "denied /usr/pwned OSError",
        "denied /pwned OSError",
    ], res.stdout + res.stderr
    assert "WROTE mine.txt" in res.stdout
    assert not target.exists()
    assert (box.scratch / "mine.txt").stat().st_uid == 65534


@confined
def test_runs_as_unprivileged_uid_outside(box: SandboxSession) -> None:
    code = "import os, time; print(os.getuid(), flush=True); time.sleep(30)"
    argv = box.launcher([sys.executable, "-c", code])
    proc = subprocess.Popen(
        argv, env=box.env(), start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "65534"  # running: set-up is over
        members = box.pids()
        assert proc.pid in members and len(members) >= 3  # bwrap, its init, python
        student = [p for p in members if _cmdline(p)[:2] == [sys.executable, "-c"]]
        assert len(student) == 1
        for pid in members:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            uids = next(ln for ln in status if ln.startswith("Uid:")).split()[1:]
            assert uids == ["65534"] * 4, (pid, uids)
            if pid in student:  # bwrap's own init keeps caps, but only in its user ns
                for field in ("CapEff:", "CapPrm:", "CapBnd:"):
                    caps = next(ln for ln in status if ln.startswith(field)).split()[1]
                    assert int(caps, 16) == 0, field
    finally:
        box.teardown()
        proc.wait(timeout=10)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


@confined
def test_file_size_open_files_and_scratch_quota(layout: dict[str, Path]) -> None:
    lim = ExecutionLimits(file_size_bytes=2**20, open_files=64, scratch_bytes=3 * 2**20)
    with SandboxSession(layout["scratch"], layout["outbox"], None, lim, "strict") as small:
        res = run(
            small,
            """
            import signal, errno
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            try:
                with open("big", "wb") as fh:
                    fh.write(b"x" * (2 * 2**20))
            except OSError as exc:
                print("fsize", errno.errorcode[exc.errno])
            fds = []
            try:
                for i in range(1000):
                    fds.append(open("hw.ipynb"))
            except OSError as exc:
                print("nofile", len(fds), errno.errorcode[exc.errno])
            for fh in fds:
                fh.close()
            try:
                for i in range(10):
                    with open(f"fill{i}", "wb") as fh:
                        fh.write(b"y" * (2**20 - 1))
            except OSError as exc:
                print("disk", i, errno.errorcode[exc.errno])
            """,
        )
        assert "fsize EFBIG" in res.stdout, res.stdout + res.stderr
        assert (small.scratch / "big").stat().st_size <= 2**20
        nofile = next(ln for ln in res.stdout.splitlines() if ln.startswith("nofile"))
        assert int(nofile.split()[1]) < 64 and nofile.endswith("EMFILE")
        assert "disk" in res.stdout and "ENOSPC" in res.stdout
        used = sum(f.stat().st_size for f in small.scratch.iterdir())
        assert used <= 3 * 2**20


@confined
def test_outbox_survives_teardown_without_symlinks(layout: dict[str, Path]) -> None:
    with SandboxSession(
        layout["scratch"], layout["outbox"], None, ExecutionLimits(), "strict"
    ) as s:
        res = run(
            s,
            f"""
            import os
            open({str(layout["outbox"] / "answers.json")!r}, "w").write('{{"q1": 2}}')
            os.symlink({str(layout["secret"])!r}, {str(layout["outbox"] / "evil.json")!r})
            """,
        )
        assert res.returncode == 0, res.stderr
    assert (layout["outbox"] / "answers.json").read_text() == '{"q1": 2}'
    assert not (layout["outbox"] / "evil.json").exists()
    assert not os.path.ismount(layout["outbox"]) and not os.path.ismount(layout["scratch"])


@confined
def test_killing_parent_and_everyone_does_not_reach_grader(box: SandboxSession) -> None:
    sentinel = subprocess.Popen(["sleep", "60"])
    try:
        res = run(
            box,
            """
            import os, signal
            for target in (os.getppid(), 1, -1, 0):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError as exc:
                    print("denied", target, type(exc).__name__)
            """,
        )
        assert res.returncode != 0 or "denied" in res.stdout
        assert sentinel.poll() is None  # the canary outside the sandbox is alive
        os.kill(os.getpid(), 0)  # and so are we
    finally:
        sentinel.kill()
        sentinel.wait()


@confined
def test_ipc_kernel_runs_and_interrupts(layout: dict[str, Path]) -> None:
    """A real ipykernel in the sandbox, reached over IPC sockets in the runtime dir."""
    from jupyter_client.manager import AsyncKernelManager

    async def scenario(box: SandboxSession) -> tuple[str, str, float]:
        km = AsyncKernelManager(
            kernel_name="python3",
            transport=box.transport,
            ip=box.ip,
            connection_file=str(box.connection_file),
        )
        spec = km.kernel_spec
        assert spec is not None
        spec.argv = box.launcher(spec.argv)
        spec.interrupt_mode = "message"  # signals are not forwarded through bwrap
        await km.start_kernel(cwd=str(box.scratch), env=box.env())
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            outputs: list[str] = []

            def hook(msg: dict[str, Any]) -> None:
                if msg["msg_type"] == "execute_result":
                    outputs.append(msg["content"]["data"]["text/plain"])

            reply = await kc.execute_interactive("1+1", timeout=30, output_hook=hook)
            assert reply["content"]["status"] == "ok"
            msg_id = kc.execute("import time\nwhile True: time.sleep(0.01)")
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            await km.interrupt_kernel()
            while True:
                msg = await kc.get_shell_msg(timeout=10)
                if msg["parent_header"].get("msg_id") == msg_id:
                    break
            took = time.monotonic() - t0
            return outputs[0], msg["content"]["ename"], took
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    with SandboxSession(
        layout["scratch"], layout["outbox"], None, ExecutionLimits(), "strict"
    ) as box:
        assert box.transport == "ipc"
        result, ename, took = asyncio.run(scenario(box))
        assert result == "2"
        assert ename == "KeyboardInterrupt"
        assert took < 5
        runtime = box.runtime_dir
    assert runtime is not None and not runtime.exists()
    assert not box.pids()
    signal.getsignal(signal.SIGINT)  # the grader is still alive and well


@confined
def test_private_tmp_is_mounted_before_binds(box: SandboxSession) -> None:
    """A venv or scratch under /tmp (a clone in /tmp, pytest's tmp_path) stays visible:
    bwrap mounts in argument order, so the private /tmp must come before every bind."""
    from grader.sandbox.protections import python_paths

    argv = box.launcher([sys.executable, "-c", "pass"])
    tmpfs = argv.index("--tmpfs")
    assert argv[tmpfs + 1] == "/tmp"
    bound = [str(p) for p in python_paths()] + [str(box.scratch), str(box.outbox)]
    for i, arg in enumerate(argv):
        if arg in ("--ro-bind", "--bind") and argv[i + 2] in bound:
            assert i > tmpfs, f"{argv[i + 2]} is bound before the private /tmp"
