"""The adversarial suite: hostile submissions graded in one batch with the HW3 samples.

One module-scoped batch (graded once, ``--jobs 2``) holds every attack of
:mod:`tests.sandbox.attacks`, a victim student whose notebook holds a secret, and a copy
of the HW3 samples. Before the batch the test plants what the attacks aim at (secrets,
a loopback listener, a test host in a network namespace, a bystander process, a
sentinel in the output folder); afterwards each test checks one attack's expected
outcome in its result AND a canary observed from outside the sandbox.

The rubric is a copy of ``rubrics/hw3.yaml`` with a 10 s cell limit instead of 30 s (the
HW3 samples' golden totals do not depend on it; the infinite loops cost less) whose
reference is a copy of ``reference/hw3.py`` with a secret in a comment. Cell positions
in the assertions count the attacker's ``K`` cell as 1 and its answers as 2. Needs root,
bubblewrap and a writable cgroup, as in CI; the whole module takes 2-3 minutes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.cli import main
from grader.discover import discover
from grader.pipeline import grade_submission
from grader.reference import load_expected
from grader.results import validate
from grader.rubric import load_rubric
from grader.sandbox.protections import detect_protections
from tests.golden.support import load_golden
from tests.sandbox import attacks as atk

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "submissions" / "hw3"
GOLDEN = load_golden("hw3")
SAMPLE_STUDENTS = sorted(GOLDEN)
VICTIM = "victim"
CELL_TIMEOUT = 20  # seconds; the HW3 samples import torch in a cell, and the disk filler
# writes 2 GiB, both under the load of a parallel suite

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not detect_protections().complete,
    reason="the adversarial suite needs root, bubblewrap and a writable cgroup (as in CI)",
)

# Runs in the test's own network namespace; logs every contact, one line each.
NETNS_LISTENER = """
import select, socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
tcp = socket.create_server((addr, port))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((addr, port))
print("READY", flush=True)
while True:
    ready, _, _ = select.select([tcp, udp], [], [])
    for s in ready:
        if s is tcp:
            conn, peer = tcp.accept()
            conn.settimeout(1)
            try:
                data = conn.recv(200)
            except OSError:
                data = b""
            conn.close()
            print("TCP", peer[0], data.decode(errors="replace"), flush=True)
        else:
            data, peer = udp.recvfrom(200)
            print("UDP", peer[0], data.decode(errors="replace"), flush=True)
"""


# --------------------------------------------------------------------------- canaries


class LoopbackListener:
    """TCP and UDP listeners on 127.0.0.1 owned by the test, recording every contact."""

    def __init__(self) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.contacts: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def ports(self) -> tuple[int, int]:
        return self.tcp.getsockname()[1], self.udp.getsockname()[1]

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.tcp, self.udp], [], [], 0.1)
            for s in ready:
                if s is self.tcp:
                    conn, _ = self.tcp.accept()
                    with conn:
                        conn.settimeout(1)
                        try:
                            data = conn.recv(200)
                        except OSError:
                            data = b""
                    self.contacts.append(("tcp", data))
                else:
                    data, _ = self.udp.recvfrom(200)
                    self.contacts.append(("udp", data))

    def probe(self, token: str) -> None:
        """Contact both listeners from the test itself (proves they work)."""
        tcp_port, udp_port = self.ports
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=3) as s:
            s.sendall(f"PROBE-{token}".encode())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(f"PROBE-{token}".encode(), ("127.0.0.1", udp_port))
        deadline = time.monotonic() + 5
        while len(self.contacts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.tcp.close()
        self.udp.close()


class NetnsHost:
    """A test host in a network namespace the test creates, on a veth pair whose
    addresses (10.200.N.1 on the host side, 10.200.N.2 inside) the test assigns.
    Nothing here ever contacts any other address."""

    PORT = 8765

    def __init__(self, token: str, log: Path) -> None:
        self.ns = f"gradeadv-{token[:8]}"
        self.host_if = f"gah{token[:8]}"
        self.ns_if = f"gan{token[:8]}"
        self.log = log
        self.addr: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.unavailable: str | None = None
        self.created = False

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)

    def start(self, token: str) -> None:
        if shutil.which("ip") is None:
            self.unavailable = "the `ip` command is not installed"
            return
        used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, check=False)
        free = [n for n in range(1, 255) if f"10.200.{n}." not in used.stdout]
        net = random.choice(free)
        try:
            self._ip("netns", "add", self.ns)
            self.created = True
            self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self._ip("link", "set", self.ns_if, "netns", self.ns)
            self._ip("addr", "add", f"10.200.{net}.1/30", "dev", self.host_if)
            self._ip("link", "set", self.host_if, "up")
            self._ip("-n", self.ns, "addr", "add", f"10.200.{net}.2/30", "dev", self.ns_if)
            self._ip("-n", self.ns, "link", "set", self.ns_if, "up")
            self._ip("-n", self.ns, "link", "set", "lo", "up")
        except (subprocess.SubprocessError, OSError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            self.unavailable = f"`ip netns`/veth set-up failed: {exc} {stderr.decode().strip()}"
            return
        self.addr = f"10.200.{net}.2"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.ns,
                    sys.executable,
                    "-u",
                    "-c",
                    NETNS_LISTENER,
                    self.addr,
                    str(self.PORT),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not self._wait_for("READY"):
            self.unavailable = f"the listener in {self.ns} did not start: {self.lines()}"
            return
        try:
            with socket.create_connection((self.addr, self.PORT), timeout=3) as s:
                s.sendall(f"PROBE-{token}".encode())
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(f"PROBE-{token}".encode(), (self.addr, self.PORT))
        except OSError as exc:
            self.unavailable = f"the test host {self.addr} is unreachable from the host: {exc}"
            return
        if not (self._wait_for("TCP") and self._wait_for("UDP")):
            self.unavailable = f"the test host did not log the test's own probe: {self.lines()}"

    def _wait_for(self, prefix: str) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(line.startswith(prefix) for line in self.lines()):
                return True
            time.sleep(0.05)
        return False

    def lines(self) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        if self.created:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)


class Sampler:
    """Samples the grader's own RSS and the free disk space of the temp dir meanwhile."""

    def __init__(self) -> None:
        self.rss_before = self.rss()
        self.rss_peak = self.rss_before
        self.disk_before = shutil.disk_usage(tempfile.gettempdir()).free
        self.disk_min = self.disk_before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/self/status")

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            self.rss_peak = max(self.rss_peak, self.rss())
            if n % 10 == 0:
                free = shutil.disk_usage(tempfile.gettempdir()).free
                self.disk_min = min(self.disk_min, free)
            n += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def marker_processes(needle: str) -> list[tuple[int, str]]:
    """Live processes whose command line contains ``needle`` (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in cmdline:
            found.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under ``folder``: (content hash or link target, mtime_ns, mode)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            what = "-> " + os.readlink(path)
        elif path.is_dir():
            what = "dir"
        else:
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        out[str(path.relative_to(folder))] = (what, st.st_mtime_ns, st.st_mode)
    return out


# --------------------------------------------------------------------------- the batch


@dataclass
class World:
    """Everything the batch produced and every canary observed from outside."""

    tmp: Path
    targets: atk.Targets
    rubric: Path
    out: Path
    exit_code: int
    duration_s: float
    results: dict[str, dict[str, Any]]
    raw: dict[str, str]
    secrets: dict[str, str]
    leftovers: list[tuple[int, str]]
    bystander_alive: bool
    loopback_contacts: list[tuple[str, bytes]]
    netns_lines: list[str]
    netns_unavailable: str | None
    rss_before: int
    rss_peak: int
    disk_before: int
    disk_min: int
    subs_before: dict[str, tuple[str, int, int]]
    subs_after: dict[str, tuple[str, int, int]]
    sentinel: tuple[bytes, int]
    protected: dict[Path, tuple[bytes, int]] = field(default_factory=dict)

    def result(self, student: str) -> dict[str, Any]:
        return self.results[student]

    def checks(self, student: str) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for q in self.results[student]["questions"] for c in q["checks"]}

    def report(self, student: str) -> dict[str, Any]:
        report = atk.attack_report(self.results[student])
        assert report is not None, f"{student} did not report: {self.execution(student)}"
        return report

    def execution(self, student: str) -> dict[str, Any]:
        ex: dict[str, Any] = self.results[student]["execution"]
        return ex

    def alive(self, attack: str) -> list[tuple[int, str]]:
        marker = self.targets.marker(attack)
        return [p for p in self.leftovers if marker in p[1]]


def _write_rubric(tmp: Path, reference: Path) -> Path:
    data = yaml.safe_load((ROOT / "rubrics" / "hw3.yaml").read_text())
    data["reference"] = str(reference)  # absolute: kept as is by the rubric's folder
    data["solution"] = str(SAMPLES / "solution")
    data["limits"] = {"cell_timeout": CELL_TIMEOUT, "notebook_timeout": 120}
    path = tmp / "rubric" / "hw3.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _copy_samples(subs: Path) -> None:
    for entry in SAMPLES.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, subs / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, subs / entry.name)


def _stamp(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Plant the canaries, grade everything once with ``--jobs 2``, observe."""
    tmp = tmp_path_factory.mktemp("adversarial")
    token = secrets.token_hex(6)
    found = {
        "victim": f"{atk.SECRET_PREFIX}victim-{secrets.token_hex(12)}",
        "reference": f"{atk.SECRET_PREFIX}reference-{secrets.token_hex(12)}",
        "environment": f"{atk.SECRET_PREFIX}environment-{secrets.token_hex(12)}",
    }
    reference = tmp / "reference" / "hw3.py"
    reference.parent.mkdir()
    reference.write_text(
        (ROOT / "reference" / "hw3.py").read_text() + f"\n# {found['reference']}\n"
    )
    rubric = _write_rubric(tmp, reference)
    subs = tmp / "submissions"
    subs.mkdir()
    _copy_samples(subs)
    out = tmp / "graded"
    out.mkdir()
    (out / "sentinel.txt").write_text("written by the test before the batch\n")

    listener = LoopbackListener()
    netns = NetnsHost(token, tmp / "netns.log")
    bystander: subprocess.Popen[bytes] | None = None
    with pytest.MonkeyPatch.context() as mp:
        try:
            listener.probe(token)
            netns.start(token)
            tcp_port, udp_port = listener.ports
            targets = atk.Targets(
                token=token,
                submissions=subs,
                victim=VICTIM,
                out_dir=out,
                rubric=rubric,
                reference=reference,
                pickle_marker=tmp / "UNPICKLED",
                loopback_port=tcp_port,
                loopback_udp_port=udp_port,
                netns_host=netns.addr if netns.unavailable is None else None,
                netns_port=NetnsHost.PORT,
            )
            atk.build_all(targets, subs, found["victim"])
            # A process of the sandbox's uid outside any sandbox: kill(-1) from inside
            # must not reach it.
            bystander = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(900)", f"ADVBYSTANDER-{token}"],
                user=65534,
                group=65534,
                extra_groups=[],
                start_new_session=True,
            )
            mp.setenv("GRADER_CACHE", str(tmp / "cache"))
            mp.setenv("ADV_GRADER_SECRET", found["environment"])
            load_expected(load_rubric(str(rubric)))  # reference computed before measuring
            subs_before = snapshot(subs)
            protected = {p: _stamp(p) for p in (reference, rubric)}
            sentinel = _stamp(out / "sentinel.txt")
            sampler = Sampler()
            started = time.monotonic()
            argv = [str(subs), "--rubric", str(rubric), "--out", str(out), "--no-reports"]
            try:
                code = main([*argv, "--jobs", "2"])
            finally:
                sampler.stop()
            duration = time.monotonic() - started
            leftovers = [p for p in marker_processes("ADVMARK-") if token in p[1]]
            results, raw = {}, {}
            for path in sorted((out / "results").glob("*.json")):
                raw[path.stem] = path.read_text()
                results[path.stem] = json.loads(raw[path.stem])
            yield World(
                tmp=tmp,
                targets=targets,
                rubric=rubric,
                out=out,
                exit_code=code,
                duration_s=duration,
                results=results,
                raw=raw,
                secrets=found,
                leftovers=leftovers,
                bystander_alive=bystander.poll() is None,
                loopback_contacts=list(listener.contacts),
                netns_lines=netns.lines(),
                netns_unavailable=netns.unavailable,
                rss_before=sampler.rss_before,
                rss_peak=sampler.rss_peak,
                disk_before=sampler.disk_before,
                disk_min=sampler.disk_min,
                subs_before=subs_before,
                subs_after=snapshot(subs),
                sentinel=sentinel,
                protected=protected,
            )
        finally:
            listener.close()
            netns.close()
            if bystander is not None:
                bystander.kill()
                bystander.wait(10)
            for pid, cmdline in marker_processes("ADVMARK-"):
                if token in cmdline:  # only ever our own attacks' leftovers
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def attack_names() -> list[str]:
    return [a.name for a in atk.ALL] + [atk.SINGLE_FILE_SYMLINK]


def assert_answers_before_count(world: World, student: str) -> None:
    """The answers of cell 2 (harvested before the attack) were graded, 10 points."""
    checks = world.checks(student)
    for cid in ("q2_O", "q2_G", "q6_output_shape", "q6_params"):
        assert checks[cid]["status"] == "pass", (cid, checks[cid]["message"])
    assert sum(checks[c]["score"] for c in ("q2_O", "q2_G", "q6_output_shape", "q6_params")) == (
        atk.ANSWERS_POINTS
    )


def failures(world: World, student: str) -> list[tuple[int, str]]:
    return [(f["cell"], f["kind"]) for f in world.execution(student)["failures"]]


# ------------------------------------------------------------------- the whole batch


def test_whole_batch_samples_as_alone_nothing_left_grader_alive(world: World) -> None:
    """Every attack plus the HW3 samples in one batch with two jobs: the samples score
    exactly their golden totals (as graded alone), no attack process survives, the
    grader (this pytest process) is alive and the batch exited 0."""
    assert world.exit_code == 0
    expected = {*SAMPLE_STUDENTS, VICTIM, *attack_names()}
    assert set(world.results) == expected
    for student in SAMPLE_STUDENTS:
        got = world.checks(student)
        points = {cid: (c["score"], c["status"]) for cid, c in got.items()}
        assert points == GOLDEN[student].checks, student
        assert world.result(student)["score"] == GOLDEN[student].total, student
    assert world.leftovers == []
    assert [p for p in marker_processes("ADVMARK-") if world.targets.token in p[1]] == []
    assert world.bystander_alive, "a process outside the sandbox was killed"
    os.kill(os.getpid(), 0)
    for student, record in world.results.items():
        validate(record)
        assert len(world.raw[student]) < 200_000, f"{student}'s result is bloated"
    print(f"batch of {len(world.results)} graded in {world.duration_s:.0f} s")


def test_victim_scores_in_the_batch_as_alone(world: World) -> None:
    """The other student of every attack gets, check by check, what it gets alone."""
    rubric = load_rubric(str(world.rubric))
    sub = next(s for s in discover(world.targets.submissions) if s.student == VICTIM)
    alone = grade_submission(sub, rubric, load_expected(rubric), sandbox="strict")
    batch = world.checks(VICTIM)
    assert world.result(VICTIM)["score"] == alone.score == atk.VICTIM_POINTS
    assert {q.id: [(c.id, c.score, c.status) for c in q.checks] for q in alone.questions} == {
        q["id"]: [(c["id"], c["score"], c["status"]) for c in q["checks"]]
        for q in world.result(VICTIM)["questions"]
    }
    assert batch["q2_dL_dX"]["status"] == "pass"


def test_no_secret_in_any_attack_result(world: World) -> None:
    """Neither the victim's secret, nor the reference's, nor the grader's environment,
    nor the real reference or rubric appear in any attacker's result."""
    real_reference = "Q3_LAYER_NAMES = ("
    real_rubric = "solution: ../submissions/hw3/solution"
    for student in attack_names():
        text = world.raw[student]
        for what, secret in world.secrets.items():
            assert secret not in text, f"the {what} secret leaked into {student}'s result"
        assert real_reference not in text and real_rubric not in text, student


# ------------------------------------------------------------------------ the attacks


def test_infinite_loop_interrupted_and_run_continues(world: World) -> None:
    name = atk.INFINITE_LOOP.name
    ex = world.execution(name)
    assert ex["timed_out"] is True and failures(world, name) == [(3, "timeout")]
    assert f"within {CELL_TIMEOUT} s" in ex["failures"][0]["evalue"]
    assert world.checks(name)["q3_total_params"]["status"] == "pass"  # cell 4 ran
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS
    assert_answers_before_count(world, name)
    assert ex["duration_s"] < 45


def test_loop_ignoring_interrupts_killed_with_its_children(world: World) -> None:
    name = atk.STUBBORN_LOOP.name
    ex = world.execution(name)
    assert failures(world, name) == [(4, "timeout")]
    assert "did not stop when interrupted" in ex["failures"][0]["evalue"]
    assert ex["cells_not_run"] == [5]
    assert world.checks(name)["q3_total_params"]["status"] == "error"
    assert world.result(name)["score"] == atk.ANSWERS_POINTS
    assert_answers_before_count(world, name)
    assert world.alive(name) == []  # the setsid child and the daemon died with it


def test_fork_flood_stopped_at_the_process_limit(world: World) -> None:
    name = atk.FORK_FLOOD.name
    ex = world.execution(name)
    assert ex["limit_hit"] is not None and "256-process limit" in ex["limit_hit"]
    assert world.checks(name)["q3_total_params"]["status"] == "pass"
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS
    assert world.alive(name) == []


def test_process_flood_stopped_at_the_process_limit(world: World) -> None:
    name = atk.PROCESS_FLOOD.name
    ex = world.execution(name)
    assert ex["limit_hit"] is not None and "256-process limit" in ex["limit_hit"]
    report = world.report(name)
    assert 100 < report["started"] < 256, report
    assert "Resource temporarily unavailable" in report["stopped_by"]
    assert world.checks(name)["q3_total_params"]["status"] == "pass"
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS
    assert world.alive(name) == []  # incl. the setsid sleepers and double-forked daemons


def test_memory_bomb_named_in_words_with_its_cell(world: World) -> None:
    name = atk.MEMORY_BOMB.name
    ex = world.execution(name)
    match = re.fullmatch(r"stopped at the 2 GiB memory limit in cell (\d+)", ex["limit_hit"] or "")
    assert match, ex["limit_hit"]
    cell = int(match.group(1))
    assert cell in (3, 4, 5, 6)  # one of the four cells that allocate
    assert ex["kernel_died"] is True
    assert (cell, "limit") in failures(world, name)
    assert ex["cells_not_run"] and ex["cells_not_run"][-1] == 7
    later = world.checks(name)["q3_total_params"]
    assert later["status"] == "error" and "2 GiB memory limit" in later["message"]
    assert world.result(name)["score"] == atk.ANSWERS_POINTS
    assert_answers_before_count(world, name)


def test_huge_output_leaves_the_grader_small(world: World) -> None:
    name = atk.HUGE_OUTPUT.name
    report = world.report(name)
    assert report["printed_bytes"] >= 256 * 2**20, report  # hundreds of MB printed
    growth = world.rss_peak - world.rss_before
    print(f"printed {report['printed_bytes'] >> 20} MiB; the grader grew {growth >> 20} MiB")
    assert growth < 256 * 2**20, f"the grader grew by {growth >> 20} MiB"
    assert (5, "error") in failures(world, name)  # the 4 MB exception, recorded ...
    evalue = next(f["evalue"] for f in world.execution(name)["failures"] if f["cell"] == 5)
    assert len(evalue) < 5000  # ... but not kept whole
    assert world.checks(name)["q3_total_params"]["status"] == "pass"
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS


def test_disk_filling_hurts_only_the_attacker(world: World) -> None:
    name = atk.DISK_FILL.name
    report = world.report(name)
    assert report["._error"] == "OSError: errno 28", report  # ENOSPC in the scratch
    assert report["._bytes"] <= 2**30
    assert report["/tmp_error"] == "OSError: errno 28", report
    assert world.checks(name)["q3_total_params"]["status"] == "pass"  # kernel fine after
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS
    written = report["._bytes"] + report["/tmp_bytes"]
    drop = world.disk_before - world.disk_min
    print(f"the attacker wrote {written >> 20} MiB; the host's free disk dropped {drop >> 20} MiB")
    assert written > 2**30 and drop < 512 * 2**20, f"host disk dropped {drop >> 20} MiB"


def test_reading_others_and_the_reference_finds_nothing(world: World) -> None:
    name = atk.READ_OTHERS.name
    report = world.report(name)
    hidden = [
        "rel1",
        "rel2",
        "rel3",
        "victim_notebook",
        "submissions",
        "victim_dir",
        "reference",
        "reference_dir",
        "rubric",
        "rubric_dir",
        "real_reference",
        "real_rubric",
        "project_reference",
        "out_dir",
        "root_home",
        "shadow",
    ]
    assert {label: report["read"][label] for label in hidden} == dict.fromkeys(
        hidden, "FileNotFoundError"
    )
    assert report["found"] == [] and report["names"] == []
    assert report["scanned"] > 100  # the search did run through the visible tree
    assert len(report["scratch_dirs"]) == 1  # its own; no other student's scratch
    assert report["env_has_secret"] is False
    # What it read (its scratch's parent, /proc/1/environ ...) reached its result: had
    # it found a secret, the secret would be there.
    assert report["read"]["parent"] == "LISTED outbox work"
    # The project folder exists (if at all) only as the mount point of its virtualenv.
    assert report["read"]["project"] in ("LISTED .venv", "FileNotFoundError")
    assert "outbox work" in world.checks(name)["q2_dL_dX"]["got"]
    for secret in world.secrets.values():
        assert secret not in world.raw[name]


def test_writing_into_other_submissions_changes_nothing(world: World) -> None:
    name = atk.WRITE_OTHERS.name
    report = world.report(name)
    assert len(report) == 8  # every target was attacked
    assert world.subs_after == world.subs_before  # bytes, mtimes and modes of every file
    for path, (data, mtime) in world.protected.items():
        assert _stamp(path) == (data, mtime), path
    assert not (world.targets.submissions / "planted.txt").exists()
    assert world.checks(name)["q3_total_params"]["status"] == "pass"


def test_forged_results_do_not_reach_the_output_folder(world: World) -> None:
    name = atk.FORGE_RESULTS.name
    report = world.report(name)
    assert report, "the attack did not run"
    assert _stamp(world.out / "sentinel.txt") == world.sentinel
    for path in world.out.rglob("*"):
        # The similarity evidence quotes students' code, the attacker's source included.
        if path.is_file() and not path.name.startswith("similarity"):
            assert b"FORGED-BY-ATTACKER" not in path.read_bytes(), path
    assert world.result(VICTIM)["score"] == atk.VICTIM_POINTS
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS
    gradebook = (world.out / "gradebook.csv").read_text()
    assert re.search(rf"^{name},.*,12,90$", gradebook, re.M)


def test_network_loopback_listener_sees_nothing(world: World) -> None:
    name = atk.NETWORK.name
    report = world.report(name)
    probe = f"PROBE-{world.targets.token}".encode()
    assert [c for c in world.loopback_contacts if c[1] == probe], "listener never worked"
    assert [c for c in world.loopback_contacts if c[1] != probe] == []
    assert report["loopback_tcp"] != "CONNECTED", report
    assert world.checks(name)["q3_total_params"]["status"] == "pass"


def test_network_test_host_in_a_namespace_sees_nothing(world: World) -> None:
    if world.netns_unavailable is not None:
        pytest.skip(f"no test host in a network namespace: {world.netns_unavailable}")
    name = atk.NETWORK.name
    report = world.report(name)
    probe = f"PROBE-{world.targets.token}"
    contacts = [line for line in world.netns_lines if line.startswith(("TCP", "UDP"))]
    assert [c for c in contacts if c.endswith(probe)], "the test host never saw the probe"
    assert [c for c in contacts if not c.endswith(probe)] == []
    assert report["netns_tcp"] != "CONNECTED", report
    assert set(report["interfaces"]) <= {"lo"}


def test_killing_the_parent(world: World) -> None:
    name = atk.KILL_PARENT.name
    assert world.checks(name)["q3_total_params"]["status"] == "pass"  # kernel carried on
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS
    assert world.bystander_alive and world.exit_code == 0


def test_killing_every_process(world: World) -> None:
    name = atk.KILL_EVERYONE.name
    # kill(-1) reaches only the sandbox's own processes; the kernel itself is spared.
    assert world.checks(name)["q3_total_params"]["status"] == "pass"
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS
    assert world.alive(name) == []
    assert world.bystander_alive, "kill(-1) reached a process outside the sandbox"


def test_killing_the_process_group(world: World) -> None:
    name = atk.KILL_GROUP.name
    ex = world.execution(name)
    assert ex["kernel_died"] is True and failures(world, name) == [(3, "kernel_died")]
    assert ex["cells_not_run"] == [4]
    assert world.result(name)["score"] == atk.ANSWERS_POINTS
    assert_answers_before_count(world, name)
    assert world.bystander_alive


def test_os_exit_mid_notebook(world: World) -> None:
    name = atk.OS_EXIT.name
    ex = world.execution(name)
    assert ex["kernel_died"] is True and failures(world, name) == [(4, "kernel_died")]
    assert "exited with code 0" in ex["failures"][0]["evalue"]
    later = world.checks(name)["q3_total_params"]
    assert later["status"] == "error" and "kernel died" in later["message"]
    assert world.result(name)["score"] == atk.ANSWERS_POINTS
    assert_answers_before_count(world, name)
    assert world.alive(name) == []


def test_patched_showtraceback_still_records_the_failure(world: World) -> None:
    name = atk.SHOWTRACEBACK.name
    ex = world.execution(name)
    assert failures(world, name) == [(4, "error")]
    assert ex["failures"][0]["ename"] == "NameError"
    checks = world.checks(name)
    assert (checks["q2_dL_dF"]["score"], checks["q2_dL_dF"]["status"]) == (0, "fail")
    assert checks["q2_dL_dX"]["status"] == "error" and "NameError" in checks["q2_dL_dX"]["message"]
    assert world.result(name)["score"] == atk.ANSWERS_POINTS + atk.LATER_POINTS


def test_lying_objects_score_nothing(world: World) -> None:
    name = atk.LYING_OBJECTS.name
    checks = world.checks(name)
    for cid in ("q2_O", "q2_G", "q2_dL_dX", "q2_dL_dF", "q6_output_shape", "q3_total_params"):
        assert (checks[cid]["score"], checks[cid]["status"]) == (0, "fail"), cid
    # Tuple subclasses (torch.Size, named tuples) are answers the handouts accept: read
    # through tuple's own storage, the lying one holds (1, 2, 3), which is wrong.
    for cid in ("q2_O", "q2_G", "q2_dL_dX", "q2_dL_dF", "q3_total_params"):
        assert "cannot read" in checks[cid]["message"], checks[cid]["message"]
    assert "differs from the expected value" in checks["q6_output_shape"]["message"]
    assert checks["q6_params"]["status"] == "pass"  # the honest answer
    assert world.result(name)["score"] == 2
    assert world.report(name) == {"calls": []}  # no harvest ever called their methods


def test_planted_pickles_are_never_unpickled(world: World) -> None:
    name = atk.PICKLES.name
    assert not os.path.lexists(world.targets.pickle_marker), "the grader ran a pickle"
    checks = world.checks(name)
    expected = {
        "q2_O": "dtype object",
        "q2_G": "bad array file name",
        "q2_dL_dX": "not a .npy file",
        "q2_dL_dF": "not valid JSON",
        "q3_total_params": "bad array file name",
        "q6_output_shape": "cannot be opened",
        "q6_params": "not a regular file",
    }
    for cid, words in expected.items():
        assert (checks[cid]["score"], checks[cid]["status"]) == (0, "error"), cid
        assert words in checks[cid]["message"], (cid, checks[cid]["message"])
    # A forged answer with a 20 MB message and type name is cut, not kept whole.
    assert len(checks["q3_table"]["message"]) < 5000
    assert world.result(name)["score"] == 0


def test_symlinks_in_the_submission_not_followed(world: World) -> None:
    name = atk.SYMLINKS.name
    warnings = " ".join(world.execution(name)["warnings"])
    for link in ("data.csv", "victim.ipynb", "notes.txt", "reference", "secret.py"):
        assert f"{link} is a symbolic link and was not copied" in warnings, link
    report = world.report(name)
    for link in ("data.csv", "victim.ipynb", "notes.txt", "reference", "secret.py"):
        assert report[link].startswith("FileNotFoundError"), (link, report[link])
    assert report["listing"] == ["hw3.ipynb"]
    shadow = Path("/etc/shadow").read_text().splitlines()[0]
    assert shadow not in world.raw[name]
    assert world.result(name)["score"] == atk.ANSWERS_POINTS


def test_notebook_that_is_a_symlink_to_another_students(world: World) -> None:
    for name in (atk.SYMLINK_NOTEBOOK.name, atk.SINGLE_FILE_SYMLINK):
        record = world.result(name)
        assert record["score"] == 0, name
        warnings = " ".join(record["execution"]["warnings"])
        assert "is a symbolic link and was not copied" in warnings, name
        assert record["execution"]["cells_run"] == 0
        assert world.secrets["victim"] not in world.raw[name]
