"""The grader's data cache: data sets a notebook may load without the network.

The sandbox has no network, so ``keras.datasets.mnist.load_data()``,
``fetch_openml`` or ``torchvision.datasets.MNIST(root, download=True)`` cannot download.
The instructor fills this cache once (``grade data add NAME --from PATH``); a rubric
names the sets a notebook may load (``datasets: [mnist]``); the sandbox binds only those,
read-only, at ``/grader-data/NAME`` and tells the kernel where (``GRADER_DATASETS``,
JSON), where the in-kernel loader shims redirect each loader's download step.

Layout of the cache (default ``$XDG_DATA_HOME/grader/datasets``, i.e.
``~/.local/share/grader/datasets``; ``GRADER_DATA`` or ``--cache DIR`` elsewhere)::

    <cache>/<name>/manifest.json   # every file's relative path, size and SHA-256
    <cache>/<name>/data/...        # the files, laid out as the loader keeps them

``data/`` holds what the loader's own cache holds (docs/guide/datasets.md): Keras
``mnist.npz``; scikit-learn's ``scikit_learn_data`` home; torchvision's
``MNIST/raw`` and ``MNIST/processed``; a Hugging Face ``datasets`` folder written by
``save_to_disk``. Never a user's own caches wholesale: ``~/.cache/huggingface`` holds
access tokens, ``~/.keras`` other courses' files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.sandbox import DatasetBind

MANIFEST = "manifest.json"
#: Files a user's tool caches keep credentials in; an import refuses folders with one.
_SECRETS = ("token", "stored_tokens", ".netrc", "credentials", "kaggle.json")


class DatasetError(GraderError):
    """A data set cannot be added or found: the message says which and what to do."""


def cache_root(cache: Path | None = None) -> Path:
    """The data cache's folder: ``cache``, else ``GRADER_DATA``, else
    ``$XDG_DATA_HOME/grader/datasets`` (``~/.local/share/grader/datasets``)."""
    if cache is not None:
        return cache
    if os.environ.get("GRADER_DATA"):
        return Path(os.environ["GRADER_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "grader" / "datasets"


@dataclass(frozen=True)
class Dataset:
    """One data set of the cache: its name, its files' folder and its manifest."""

    name: str
    folder: Path  # <cache>/<name>/data, bound at /grader-data/<name>
    files: int
    bytes: int
    sha256: str  # of the manifest: changes with any file's contents

    def bind(self) -> DatasetBind:
        """The sandbox's record binding this set read-only at ``/grader-data/<name>``."""
        return DatasetBind(self.name, self.folder)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict[str, Any]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        files.append({"path": rel, "bytes": path.stat().st_size, "sha256": _file_sha256(path)})
    return {"version": 1, "files": files}


def add(name: str, source: Path, cache: Path | None = None, *, replace: bool = False) -> Dataset:
    """Copy ``source`` (a file, kept under its own name, or a folder's contents) into the
    cache as ``name`` and write its manifest. Symbolic links, and folders holding
    credentials (a Hugging Face ``token``, ``kaggle.json``), are refused."""
    from grader.rubric import DATASET_NAME

    if not DATASET_NAME.fullmatch(name):
        raise DatasetError(
            f"{name!r} is not a data set name: use letters, digits, '-', '_' and '.'"
        )
    if not source.exists():
        raise DatasetError(f"{source} does not exist: give the file or folder to import")
    root = cache_root(cache)
    target = root / name
    if target.exists() and not replace:
        raise DatasetError(f"{name} is already in {root}: add --replace to import it again")
    entries = [source] if source.is_file() else list(source.rglob("*"))
    for entry in entries:
        if entry.is_symlink():
            raise DatasetError(f"{entry} is a symbolic link: import the files it points to")
        if entry.name in _SECRETS:
            raise DatasetError(
                f"{entry} looks like a credential file: import the data set's files only, "
                "never a whole tool cache such as ~/.cache/huggingface or ~/.keras"
            )
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        data = stage / "data"
        if source.is_file():
            data.mkdir()
            shutil.copyfile(source, data / source.name)
        else:
            shutil.copytree(source, data, symlinks=True)
        manifest = _manifest(data)
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        # Readable by the sandbox's unprivileged user; nobody writes it but the grader.
        for path in (stage, *stage.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if target.exists():
            shutil.rmtree(target)
        stage.rename(target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return get(name, cache)


def get(name: str, cache: Path | None = None) -> Dataset:
    """The data set ``name`` of the cache; :class:`DatasetError` when it is not there."""
    root = cache_root(cache)
    folder = root / name
    try:
        raw = (folder / MANIFEST).read_bytes()
        manifest = json.loads(raw)
    except (OSError, ValueError):
        raise DatasetError(
            f"data set {name!r} is not in the data cache {root}: add it with "
            f"`grade data add {name} --from PATH`"
        ) from None
    files = manifest.get("files", [])
    return Dataset(
        name,
        folder / "data",
        len(files),
        sum(int(f.get("bytes", 0)) for f in files),
        hashlib.sha256(raw).hexdigest(),
    )


def all_datasets(cache: Path | None = None) -> list[Dataset]:
    """Every data set of the cache, by name."""
    root = cache_root(cache)
    if not root.is_dir():
        return []
    return [get(p.name, cache) for p in sorted(root.iterdir()) if (p / MANIFEST).is_file()]


def resolve(names: Iterable[str], cache: Path | None = None) -> tuple[Dataset, ...]:
    """The named sets (a rubric's ``datasets:``); :class:`DatasetError` names every one
    missing from the cache."""
    found: list[Dataset] = []
    missing: list[str] = []
    for name in names:
        try:
            found.append(get(name, cache))
        except DatasetError:
            missing.append(name)
    if missing:
        raise DatasetError(
            f"data set(s) {', '.join(missing)} named by the rubric's `datasets:` are not in "
            f"the data cache {cache_root(cache)}: add each with `grade data add NAME --from PATH`"
        )
    return tuple(found)


def manifests_sha256(names: Iterable[str], cache: Path | None = None) -> dict[str, str | None]:
    """Name to the manifest's SHA-256 (None: not in the cache), for the execution cache key."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = get(name, cache).sha256
        except DatasetError:
            out[name] = None
    return out
