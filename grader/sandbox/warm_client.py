"""The warm kernel's (or module worker's) stand-in process on the grader's side.

Run as ``python -I -S warm_client.py REQUEST_JSON`` by the kernel manager in place of
the kernel (see :meth:`grader.sandbox.warm.WarmSession.launcher`), as root, in the
grader's namespaces; standard library only. It

1. for a kernel, hands the runtime directory to the sandbox uid (the connection file
   becomes ``root:<gid>`` 0640, as :mod:`grader.sandbox.enter` ``--share`` does); a
   module worker's runtime directory (its inbox) stays the grader's;
2. connects to the template's control socket and sends the request with its own
   stdout/stderr (the kernel log) as descriptors;
3. reads the forked relay's pid (in the template's PID namespace), finds its host pid
   among the template's children and writes it into every ``cgroup.procs`` of the
   submission's cgroup, then says ``go`` — only then does the child unshare anything;
4. waits: on ``exit STATUS`` it ends the same way as the kernel did (killed by the same
   signal, or the same exit code), so the kernel manager and the runner see the
   kernel's own fate; ``error ...`` exits 125; a closed connection without a status
   (the relay was killed, e.g. out of memory) ends by SIGKILL.

Killing this process (the manager's kill) closes the connection, and the relay then
kills the submission's PID namespace; the session's teardown kills its cgroup anyway.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every kernel start
    from typing import NoReturn

EXIT_SETUP_FAILED = 125


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"grader warm sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(EXIT_SETUP_FAILED)


def _share_dir(top: str, uid: int, gid: int) -> None:
    os.chown(top, uid, gid, follow_symlinks=False)
    os.chmod(top, 0o700)
    with os.scandir(top) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False):
                os.chown(entry.path, 0, gid, follow_symlinks=False)
                os.chmod(entry.path, 0o640)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
        except OSError:
            continue
    return out


def _inner_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _host_pid(template_pid: int, inner: int) -> int | None:
    for child in _children(template_pid):
        if _inner_pid(child) == inner:
            return child
    return None


def _end_like(status: int) -> NoReturn:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def main() -> None:
    req = json.loads(sys.argv[1])
    if req.get("share_runtime_dir", True):
        try:
            _share_dir(req["runtime_dir"], req["uid"], req["gid"])
        except OSError as exc:
            _fail(f"cannot hand the runtime directory to uid {req['uid']}: {exc}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(60)
    try:
        sock.connect(req["socket"])
        socket.send_fds(sock, [json.dumps(req["child"]).encode()], [1, 2])
        reply = sock.recv(4096).decode(errors="replace")
    except OSError as exc:
        _fail(f"the warm template did not answer: {exc}")
    if not reply.startswith("pid "):
        _fail(f"the warm template refused: {reply or 'connection closed'}")
    host = _host_pid(req["template_pid"], int(reply.split()[1]))
    if host is None:
        _fail("cannot find the forked kernel among the template's children")
    for procs in req["cgroup_procs"]:
        try:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(host).encode())
            finally:
                os.close(fd)
        except OSError as exc:
            os.kill(host, signal.SIGKILL)
            _fail(f"cannot move the kernel into its cgroup via {procs}: {exc}")
    sock.send(b"go")
    sock.settimeout(None)
    while True:
        try:
            msg = sock.recv(4096).decode(errors="replace")
        except InterruptedError:
            continue
        except OSError:
            msg = ""
        if msg.startswith("exit "):
            _end_like(int(msg.split()[1]))
        if msg.startswith("error "):
            _fail(msg[len("error ") :])
        if not msg:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
