"""What this machine can protect: bubblewrap, cgroups, a separate uid, disk quotas.

:func:`detect_protections` probes once per process (bubblewrap started with the real
flags, a writable cgroup, root for the uid switch and the tmpfs quotas);
:meth:`Protections.missing` words what is off, for the console and every report. The
read-only system and Python directories every sandbox binds (cold and warm) are listed
here too, with what is masked inside them (:func:`concealed_paths`: the grader's own
package and the shipped ``reference/``, which a non-editable install puts there).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from grader.sandbox import cgroups

#: The uid/gid the student's code runs as, inside and outside the user namespace.
NOBODY = 65534


@dataclass(frozen=True)
class Protections:
    """Which protections are in effect; :meth:`missing` says what is off, in words."""

    bubblewrap: bool
    cgroup: str | None  # "v1" | "v2" | None
    unprivileged_uid: bool
    network_isolated: bool
    disk_quota: bool
    reasons: dict[str, str] = field(default_factory=dict, compare=False)

    def missing(self) -> list[str]:
        """Each missing protection as a phrase for the console and every report."""

        def why(key: str) -> str:
            reason = self.reasons.get(key)
            return f" ({reason})" if reason else ""

        out: list[str] = []
        if not self.bubblewrap:
            out.append(
                "no file-system, process or IPC isolation: student code sees the whole "
                "machine" + why("bubblewrap")
            )
        if not self.network_isolated:
            out.append("no network isolation" + why("network"))
        if self.cgroup is None:
            out.append("no memory or process limits (no writable cgroup)" + why("cgroup"))
        if not self.unprivileged_uid:
            out.append(
                "student code runs as the grader's own user, not a separate unprivileged uid"
                + why("uid")
            )
        if not self.disk_quota:
            out.append("no disk quota on the scratch and outbox directories" + why("disk"))
        return out

    @property
    def complete(self) -> bool:
        """True when nothing is missing."""
        return not self.missing()


OFF = Protections(False, None, False, False, False, {"bubblewrap": "sandbox off"})


def mode_bits_ok(path: Path, want_dir: bool) -> str | None:
    """Can an unrelated uid (only the 'other' bits) reach ``path``? None if yes, else why."""
    p = Path(os.path.realpath(path))
    for anc in reversed(p.parents):
        try:
            if not os.stat(anc).st_mode & stat.S_IXOTH:
                return f"{anc} is not searchable by other users"
        except OSError as exc:
            return f"{anc}: {exc}"
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        return f"{p}: {exc}"
    need = stat.S_IROTH | (stat.S_IXOTH if want_dir else 0)
    if mode & need != need:
        return f"{p} is not readable by other users"
    return None


def python_paths() -> list[Path]:
    """Directories the interpreter and its packages live in (bound read-only).

    ``/usr`` (Debian's interpreter and the standard library) is always bound; this adds
    the virtualenv (``sys.prefix``), any interpreter installed elsewhere, and the
    directories a site-packages ``.pth`` file puts on the path (a venv extended with
    another one's packages). A ``.pth`` directory that holds the grader's own source
    tree (an old-style editable install) is never bound: nothing of the course or the
    grader may be readable inside (see :func:`concealed_paths`).
    """
    cands = {
        Path(sys.prefix),
        Path(sys.exec_prefix),
        Path(sys.base_prefix),
        Path(sys.base_exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
        *(Path(p) for p in site.getsitepackages()),
        Path(sysconfig.get_paths()["stdlib"]),
        *_pth_dirs(),
    }
    out: list[Path] = []
    for c in sorted(cands, key=lambda x: len(str(x))):
        if not c.exists() or c == Path("/"):
            continue
        if c == Path("/usr") or Path("/usr") in c.parents:
            continue
        if any(o == c or o in c.parents for o in out):
            continue
        out.append(c)
    return out


def _pth_dirs() -> list[Path]:
    """Directories named by path lines of the site-packages ``.pth`` files, except one
    that holds the grader's source tree (an editable install's project folder)."""
    sources = [_package_dir("grader"), _package_dir("reference")]
    found: list[Path] = []
    for sp in site.getsitepackages():
        for pth in sorted(Path(sp).glob("*.pth")):
            try:
                lines = pth.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ", "import\t")):
                    continue
                d = Path(os.path.realpath(Path(sp) / line))
                if not d.is_dir():
                    continue
                if any(s is not None and (s == d or d in s.parents) for s in sources):
                    continue
                found.append(d)
    return found


def _package_dir(name: str) -> Path | None:
    """Where the top-level package ``name`` is imported from here, without importing it."""
    if name == "grader":
        return Path(os.path.realpath(__file__)).parent.parent
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(os.path.realpath(next(iter(spec.submodule_search_locations))))
    # The reference package ships beside the grader's (in the source tree and in a wheel).
    sibling = Path(os.path.realpath(__file__)).parent.parent.parent / name
    return sibling if sibling.is_dir() else None


@functools.cache
def concealed_paths() -> tuple[Path, ...]:
    """What no sandbox may show although it lies in a bound directory: the grader's own
    package and the shipped ``reference/`` package (the answers), wherever they are
    installed, and every top-level entry the ``grader`` distribution installed in
    site-packages (its ``.dist-info``, an editable install's ``.pth`` and finder).

    A non-editable install puts ``grader/`` and ``reference/`` into the site-packages
    that every sandbox binds to run Python; each of these is masked there (an empty
    read-only directory, or ``/dev/null`` for a file). Nothing inside the sandbox needs
    them: the kernel harness and the module worker are sent in as source text.
    """
    found: set[Path] = set()
    for name in ("grader", "reference"):
        d = _package_dir(name)
        if d is not None:
            found.add(d)
    # Every distribution of that name: run from a source tree, the tree's own
    # ``grader.egg-info`` comes first on sys.path and hides the venv's ``.dist-info``.
    for dist in metadata.Distribution.discover(name="grader"):
        files = [Path(str(f)) for f in dist.files or [] if Path(str(f)).parts]
        # A shared folder (site-packages' own __pycache__) is masked file by file.
        tops = {f.parts[0] if f.parts[0] != "__pycache__" else str(f) for f in files}
        for top in tops:
            p = Path(os.path.realpath(str(dist.locate_file(top))))
            if p.exists() and Path(top).parts[0] not in ("..", "."):
                found.add(p)
    return tuple(sorted(found))


def bound_roots() -> list[Path]:
    """Every host directory a sandbox binds read-only to run Python (system and Python)."""
    roots = [Path("/usr"), *python_paths()]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.isdir(top) and not os.path.islink(top):
            roots.append(Path(top))
    return roots


def python_binds() -> list[str]:
    """bwrap arguments binding :func:`python_paths` read-only and then masking every
    :func:`concealed_paths` entry that lies inside a bound directory (cold and warm)."""
    args: list[str] = []
    for d in python_paths():
        args += ["--ro-bind", str(d), str(d)]
    roots = bound_roots()
    for hidden in concealed_paths():
        if not any(r == hidden or r in hidden.parents for r in roots):
            continue  # not bound: invisible anyway (an editable install's source tree)
        if hidden.is_dir():
            args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
        else:
            args += ["--ro-bind", "/dev/null", str(hidden)]
    return args


def check_readable_by_other() -> str | None:
    """None when an unrelated uid can read the interpreter and site-packages, else why.

    uid 65534 is neither owner nor in the group of the files, so only the 'other'
    permission bits count. A Python under a 0700 home directory fails here: use Debian's
    ``/usr/bin/python3.11`` for the venv, or ``chmod o+rX`` the tree.
    """
    checks: list[tuple[Path, bool]] = [(Path(os.path.realpath(sys.executable)), False)]
    checks += [(p, True) for p in python_paths()]
    for sp in site.getsitepackages():
        spp = Path(sp)
        if not spp.is_dir():
            continue
        checks.append((spp, True))
        with os.scandir(spp) as it:
            for entry in it:
                checks.append((Path(entry.path), entry.is_dir()))
    for path, is_dir in checks:
        problem = mode_bits_ok(path, is_dir)
        if problem:
            return problem
    return None


def system_binds() -> list[str]:
    """bwrap arguments binding the read-only system directories a Python process needs."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    return args


# The namespaces and privileges of every sandbox; the probe checks exactly these work.
ISOLATION_FLAGS = (
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)


def _bwrap_probe(bwrap: str, uid: int | None, gid: int | None) -> str | None:
    """Start an empty sandbox with the real flags; None on success, else the error."""
    cmd = [
        bwrap,
        *ISOLATION_FLAGS,
        *system_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--",
        "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true",
    ]
    kw: dict[str, object] = {}
    if uid is not None:
        kw = {"user": uid, "group": gid, "extra_groups": []}
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=20, check=False, **kw)  # type: ignore[call-overload]
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip()
        return err or f"exit status {res.returncode}"
    return None


@functools.cache
def detect_protections(uid: int = NOBODY, gid: int = NOBODY) -> Protections:
    """Probe this machine once: bubblewrap usable (as ``uid`` when root), cgroups, quota."""
    reasons: dict[str, str] = {}
    is_root = os.geteuid() == 0

    unprivileged = False
    if not is_root:
        reasons["uid"] = "only root can switch to a separate uid"
    else:
        problem = check_readable_by_other()
        if problem:
            reasons["uid"] = f"uid {uid} cannot read the Python environment: {problem}"
        else:
            unprivileged = True

    bwrap = shutil.which("bwrap")
    bubblewrap = False
    if bwrap is None:
        reasons["bubblewrap"] = (
            "bwrap not installed; run the set-up command (apt install bubblewrap)"
        )
    else:
        err = _bwrap_probe(bwrap, uid if unprivileged else None, gid if unprivileged else None)
        if err:
            reasons["bubblewrap"] = f"bwrap failed: {err.splitlines()[-1]}"
        else:
            bubblewrap = True
    if not bubblewrap:
        reasons["network"] = "needs bubblewrap"

    support = cgroups.detect_cgroup()
    if support.version is None:
        reasons["cgroup"] = support.reason
    if not is_root:
        reasons["disk"] = "mounting a size-limited tmpfs needs root"
    return Protections(
        bubblewrap=bubblewrap,
        cgroup=support.version,
        unprivileged_uid=unprivileged,
        network_isolated=bubblewrap,
        disk_quota=is_root and bubblewrap,
        reasons=reasons,
    )
