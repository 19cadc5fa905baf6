"""Running the students' self-check as a student would: an unprivileged user, no
sandbox, and a Python that has the packages of the handouts but not the grader."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The user the self-check runs as when the tests run as root.
STUDENT_USER = "nobody"


def student_python(base: Path) -> Path:
    """A virtual environment under ``base`` that sees this environment's packages
    (NumPy, torch, nbclient, ipykernel, …) through a ``.pth`` line but not the grader:
    the grader is installed here in editable mode by a ``.pth`` file of its own, which a
    site directory added by a ``.pth`` line does not process."""
    env = base / "student-venv"
    base_python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(env)], check=True)
    site = Path(
        subprocess.run(
            [
                str(env / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "shared-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env / "bin" / "python"


def world_readable_dir() -> Path:
    """A fresh folder any user can enter (pytest's own tmp folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="selfcheck-"))
    path.chmod(0o755)
    return path


def open_to_student(path: Path) -> None:
    """Let the student user read and write everything under ``path``."""
    if os.geteuid() != 0:
        return
    shutil.chown(path, user=STUDENT_USER)
    for p in path.rglob("*"):
        shutil.chown(p, user=STUDENT_USER)


def as_student(python: Path, *args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -I ARGS`` as the unprivileged student user (when we are root) with only
    a minimal environment: no PYTHONPATH, a HOME of its own."""
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    command = [str(python), "-I", *args]
    if os.geteuid() == 0:
        # setpriv keeps the environment given (runuser would set nobody's HOME).
        user = pwd.getpwnam(STUDENT_USER)
        command = [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "--",
            *command,
        ]
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=1200, check=False
    )
