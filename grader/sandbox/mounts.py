"""Mount helpers of the disk quotas: size-limited tmpfs mounts over the scratch and outbox.

Used by both sessions (cold :class:`grader.sandbox.isolation.SandboxSession` and warm
:class:`grader.sandbox.warm_session.WarmSession`) and by the warm template's runs tmpfs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import secrets
import shutil
from pathlib import Path

from grader.sandbox.cgroups import format_bytes

_MS_NOSUID = 2
_MS_NODEV = 4
_MNT_DETACH = 2


@functools.cache
def libc() -> ctypes.CDLL:
    """libc with errno kept, for mount(2), umount2(2) and unshare(2)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_tmpfs(target: Path, size: int, uid: int, gid: int) -> None:
    """Mount a ``size``-byte tmpfs owned by ``uid``/``gid`` on ``target`` (the disk quota)."""
    opts = f"size={size},mode=0700,uid={uid},gid={gid}".encode()
    rc = libc().mount(b"tmpfs", str(target).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, opts)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount tmpfs on {target}: {os.strerror(e)}")


def umount(target: Path) -> None:
    """Lazily unmount ``target`` (MNT_DETACH), so a busy mount still goes."""
    if libc().umount2(str(target).encode(), _MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if e not in (errno.EINVAL, errno.ENOENT):
            raise OSError(e, f"umount {target}: {os.strerror(e)}")


def copy_plain(src: Path, dst: Path) -> None:
    """Copy directories and regular files only (symlinks, fifos, devices are dropped)."""
    dst.mkdir(parents=True, exist_ok=True)
    with os.scandir(src) as it:
        for entry in it:
            target = dst / entry.name
            if entry.is_dir(follow_symlinks=False):
                copy_plain(Path(entry.path), target)
            elif entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, target, follow_symlinks=False)


def mount_quota(directory: Path, size: int, uid: int, gid: int) -> None:
    """Turn ``directory`` into a tmpfs of ``size`` bytes, keeping what it contained."""
    directory.mkdir(parents=True, exist_ok=True)
    stage: Path | None = None
    if any(directory.iterdir()):
        stage = directory.with_name(f".{directory.name}.stage-{secrets.token_hex(4)}")
        directory.rename(stage)
        directory.mkdir()
    mount_tmpfs(directory, size, uid, gid)
    if stage is not None:
        try:
            shutil.copytree(stage, directory, symlinks=True, dirs_exist_ok=True)
        except (OSError, shutil.Error) as exc:
            umount(directory)
            directory.rmdir()
            stage.rename(directory)
            raise OSError(
                errno.ENOSPC, f"{directory} does not fit in its {format_bytes(size)} quota"
            ) from exc
        shutil.rmtree(stage)


def unmount_keep(directory: Path) -> None:
    """Unmount the tmpfs on ``directory``, keeping its directories and regular files
    (symlinks, fifos and devices are dropped): the outbox's contents survive teardown."""
    stage = directory.with_name(f".{directory.name}.keep-{secrets.token_hex(4)}")
    copy_plain(directory, stage)
    umount(directory)
    for item in stage.iterdir():
        item.rename(directory / item.name)
    stage.rmdir()
