"""In-kernel stand-ins for the habits of notebooks written on Colab, Kaggle or a GPU laptop.

This module runs inside the student's kernel, installed by the harness before the first
cell (:func:`install`), and shipped as source text like :mod:`grader.harness.recorders`.
It imports only the standard library; torch and Keras are patched when the student's
code imports them (an import hook), or at once when a warm template preloaded them.

* **CUDA asked for on a CPU machine** (torch sees no usable CUDA device and the request
  did not say ``devices: strict``): ``.to('cuda')``, ``.cuda()``, ``device='cuda'`` of
  torch's factory functions, ``torch.load`` of a GPU-saved checkpoint, ``pin_memory``
  and ``torch.cuda.synchronize`` run on (or for) the CPU; ``torch.cuda.get_device_name``,
  ``set_device``, ``current_device``, ``torch.cuda.device(0)`` and the memory-statistics
  resets answer harmlessly. ``torch.device('cuda')`` is
  left alone (it already works without CUDA, and stays a real ``torch.device``);
  ``torch.cuda.is_available()`` still answers False; autocast, ``GradScaler``,
  ``torch.cuda.manual_seed*`` and ``torch.backends.cudnn`` flags already run on a
  CPU-only torch (they disable themselves with a warning).
* **Colab**: ``google.colab`` (``drive.mount`` a no-op with a note; ``files``,
  ``output`` and ``patches`` helpers harmless) when no real one is installed.
* **Shell habits**: ``!pip install X`` / ``%pip install X``: quietly skipped when X is
  installed; otherwise a line says the grading environment lacks X and the command's
  exit status is 1 (as a failed shell command: nothing raises). ``%cd`` into a missing
  folder prints a note (IPython already does not raise).
* **Data sets offline**: Keras' ``get_file`` (every ``keras.datasets.*.load_data()``,
  ``tf.keras`` included) reads the data sets the rubric names from the folders in
  ``GRADER_DATASETS`` (JSON: name to folder; the files under ``data/``), never the
  network; a file no named set holds fails with a message naming the sets there are.
  A set holding ``data/scikit_learn_data`` becomes scikit-learn's default data home
  (``SCIKIT_LEARN_DATA``) for its ``fetch_*`` loaders.

What happened is kept as plain counts (:func:`notes`), written by the harness to the
outbox as ``__grader_notes__.json`` with the answers.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

NOTES_FILE = "__grader_notes__.json"
MAX_EXAMPLES = 5


class _Notes:
    """What the shims did, counted; ``changed`` since the last :func:`notes` read."""

    cuda: dict[str, int] = {}  # noqa: RUF012 - one process-wide state
    shell: list[str] = []  # noqa: RUF012
    changed: bool = False
    cuda_on_cpu: bool = True
    datasets: dict[str, str] = {}  # noqa: RUF012 - name -> folder


def _note_cuda(kind: str) -> None:
    _Notes.cuda[kind] = _Notes.cuda.get(kind, 0) + 1
    _Notes.changed = True


def _note_shell(line: str) -> None:
    if len(_Notes.shell) < 50:
        _Notes.shell.append(line)
        _Notes.changed = True


def notes() -> dict[str, Any]:
    """Plain data: ``cuda_requested_on_cpu`` ({count, examples}, or absent) and
    ``shell`` (notes printed for ``!pip`` and ``%cd``)."""
    out: dict[str, Any] = {}
    if _Notes.cuda:
        kinds = sorted(_Notes.cuda.items(), key=lambda kv: (-kv[1], kv[0]))
        out["cuda_requested_on_cpu"] = {
            "count": sum(_Notes.cuda.values()),
            "examples": [f"{k} x{n}" for k, n in kinds[:MAX_EXAMPLES]],
        }
    if _Notes.shell:
        out["shell"] = list(_Notes.shell)
    _Notes.changed = False
    return out


def write_notes(outbox: str, force: bool = False) -> None:
    """Write :func:`notes` to ``<outbox>/__grader_notes__.json`` when anything changed."""
    if not (_Notes.changed or force):
        return
    data = notes()
    if not data:
        return
    path = os.path.join(outbox, NOTES_FILE)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


def install(*, cuda_on_cpu: bool = True) -> None:
    """Install every shim (idempotent): torch and Keras now or when imported, Colab's
    stand-in, and IPython's ``system`` and ``%cd`` wrappers."""
    _Notes.cuda_on_cpu = cuda_on_cpu
    try:
        _Notes.datasets = {
            str(k): str(v) for k, v in json.loads(os.environ.get("GRADER_DATASETS", "{}")).items()
        }
    except (ValueError, AttributeError):
        _Notes.datasets = {}
    for _name, folder in sorted(_Notes.datasets.items()):
        home = os.path.join(folder, "data", "scikit_learn_data")
        if os.path.isdir(home):
            # scikit-learn's fetch_* read their cache here when called without data_home=
            os.environ.setdefault("SCIKIT_LEARN_DATA", home)
    if cuda_on_cpu:
        _after_import("torch", _patch_torch)
    _after_import("keras", _patch_keras)
    _after_import("tf_keras", _patch_keras)
    _install_colab()
    _patch_ipython()


# ---------------------------------------------------------------------- import hooks

_pending: dict[str, list[Callable[[Any], None]]] = {}


def _after_import(name: str, callback: Callable[[Any], None]) -> None:
    """Run ``callback(module)`` now if ``name`` is imported, else once it is."""
    module = sys.modules.get(name)
    if module is not None:
        with contextlib.suppress(Exception):
            callback(module)
        return
    _pending.setdefault(name, []).append(callback)
    if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


class _AfterImport:
    """A meta path finder that lets the real finders find a pending module and runs the
    pending callbacks once its module has executed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> Any:
        # The callbacks stay pending until the module has run: a mere probe
        # (``importlib.util.find_spec``, as TensorFlow does for keras) runs nothing.
        if name not in _pending:
            return None
        sys.meta_path.remove(self)  # the real finders find it, not this one again
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        loader = getattr(spec, "loader", None)
        run = getattr(loader, "exec_module", None)
        if run is None:
            return spec

        def exec_module(module: Any) -> None:
            run(module)
            for callback in _pending.pop(name, []):
                with contextlib.suppress(Exception):
                    callback(module)

        loader.exec_module = exec_module  # type: ignore[union-attr]
        return spec


# ---------------------------------------------------------------------- torch

_FACTORIES = (
    "tensor", "as_tensor", "zeros", "ones", "empty", "full", "rand", "randn", "randint",
    "randperm", "arange", "linspace", "logspace", "eye", "zeros_like", "ones_like",
    "empty_like", "full_like", "rand_like", "randn_like", "randint_like", "normal",
    "tril_indices", "triu_indices", "empty_strided",
)  # fmt: skip


def _is_cuda(torch: Any, device: object) -> bool:
    if isinstance(device, str):
        return device.strip().lower().startswith("cuda")
    if isinstance(device, torch.device):
        return bool(device.type == "cuda")
    return False


def _patch_torch(torch: Any) -> None:
    """Make CUDA requests run on the CPU when torch has no usable CUDA device."""
    if getattr(torch, "__grader_cuda_on_cpu__", False):
        return
    try:
        if torch.cuda.is_available():
            return
    except Exception:  # a broken CUDA setup is no CUDA
        pass
    torch.__grader_cuda_on_cpu__ = True
    cpu = torch.device("cpu")

    def fix_args(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if "device" in kwargs and _is_cuda(torch, kwargs["device"]):
            kwargs["device"] = cpu
            _note_cuda(kind)
        if args and _is_cuda(torch, args[0]):
            _note_cuda(kind)
            return (cpu, *args[1:])
        return args

    def wrap_to(original: Callable[..., Any], kind: str) -> Callable[..., Any]:
        def to(self: Any, *args: Any, **kwargs: Any) -> Any:
            return original(self, *fix_args(kind, args, kwargs), **kwargs)

        to.__wrapped__ = original  # type: ignore[attr-defined]
        to.__doc__ = original.__doc__
        return to

    def cuda_method(kind: str) -> Callable[..., Any]:
        def cuda(self: Any, *args: Any, **kwargs: Any) -> Any:
            _note_cuda(kind)
            return self

        return cuda

    torch.Tensor.to = wrap_to(torch.Tensor.to, ".to('cuda')")
    torch.nn.Module.to = wrap_to(torch.nn.Module.to, ".to('cuda')")
    torch.Tensor.cuda = cuda_method(".cuda()")
    torch.nn.Module.cuda = cuda_method(".cuda()")

    def pin_memory(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self

    torch.Tensor.pin_memory = pin_memory

    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if "device" in kwargs and _is_cuda(torch, kwargs["device"]):
                kwargs["device"] = cpu
                _note_cuda("device='cuda'")
            return original(*args, **kwargs)

        call.__wrapped__ = original  # type: ignore[attr-defined]
        call.__doc__ = original.__doc__
        call.__name__ = getattr(original, "__name__", "factory")
        return call

    for name in _FACTORIES:
        original = getattr(torch, name, None)
        if original is not None:
            setattr(torch, name, factory(original))

    original_load = torch.load

    def to_cpu(storage: Any, location: str) -> Any:
        if str(location).startswith("cuda"):
            _note_cuda("torch.load of a GPU checkpoint")
        return storage

    def load(*args: Any, **kwargs: Any) -> Any:
        where = kwargs.get("map_location")
        if where is None or _is_cuda(torch, where):
            kwargs["map_location"] = to_cpu
        return original_load(*args, **kwargs)

    load.__wrapped__ = original_load  # type: ignore[attr-defined]
    load.__doc__ = original_load.__doc__
    torch.load = load

    original_default = getattr(torch, "set_default_device", None)
    if original_default is not None:

        def set_default_device(device: Any) -> Any:
            if _is_cuda(torch, device):
                _note_cuda("torch.set_default_device('cuda')")
                device = cpu
            return original_default(device)

        torch.set_default_device = set_default_device

    def nothing() -> Callable[..., None]:
        # A new function each time: torch._dynamo refuses one object under two names.
        def call(*args: Any, **kwargs: Any) -> None:
            return None

        return call

    # Queries and settings a Colab preamble makes (printing the GPU's name, choosing
    # device 0) that raise on a CPU-only torch: harmless answers instead.
    for name in ("synchronize", "set_device", "reset_peak_memory_stats", "ipc_collect"):
        setattr(torch.cuda, name, nothing())
    torch.cuda.get_device_name = lambda *a, **k: "none (no GPU while grading: CPU)"
    torch.cuda.current_device = lambda: 0
    torch.cuda.memory_summary = lambda *a, **k: "no GPU while grading: the code ran on the CPU"
    torch.cuda.device = lambda *a, **k: contextlib.nullcontext()


# ---------------------------------------------------------------------- Keras data sets


class DatasetUnavailable(RuntimeError):
    """A loader asked for a file that no data set of the rubric provides."""


def _provided_sets() -> str:
    if not _Notes.datasets:
        return "this assignment provides no data sets"
    return "this assignment provides: " + ", ".join(sorted(_Notes.datasets))


def find_dataset_file(fname: str) -> str:
    """The path of ``fname`` (a file or folder name a loader keeps in its cache) in a
    data set the rubric names; :class:`DatasetUnavailable` when none has it."""
    base = os.path.basename(fname.rstrip("/"))
    stems = {base}
    for ext in (".tar.gz", ".tgz", ".tar", ".zip", ".gz"):
        if base.endswith(ext):
            stems.add(base[: -len(ext)])
    for _name, folder in sorted(_Notes.datasets.items()):
        for where in (os.path.join(folder, "data"), folder):
            for stem in (base, *sorted(stems - {base})):
                path = os.path.join(where, stem)
                if os.path.exists(path):
                    return path
    raise DatasetUnavailable(
        f"{base} cannot be downloaded: the grading environment has no network; "
        f"{_provided_sets()} (a rubric's `datasets:` names the data sets a notebook may load)"
    )


def _patch_keras(keras: Any) -> None:
    """Route Keras' ``get_file`` (every ``keras.datasets`` loader) to the named sets."""
    prefix = keras.__name__
    utils = None
    # Keras 3 keeps it in file_utils, tf_keras (Keras 2) in data_utils; imported here when
    # Keras itself did not yet (TensorFlow's tf.keras imports the data set modules later,
    # and they take get_file from this module then).
    for where in (f"{prefix}.src.utils.file_utils", f"{prefix}.src.utils.data_utils"):
        try:
            utils = importlib.import_module(where)
        except ImportError:
            continue
        if hasattr(utils, "get_file"):
            break
    original = getattr(utils, "get_file", None)
    if original is None or getattr(original, "__grader_offline__", False):
        return

    def get_file(fname: str | None = None, origin: str | None = None, *a: Any, **k: Any) -> str:
        name = fname or os.path.basename(str(origin or "").split("?")[0])
        return find_dataset_file(str(name))

    get_file.__grader_offline__ = True  # type: ignore[attr-defined]
    get_file.__doc__ = original.__doc__
    utils.get_file = get_file  # type: ignore[union-attr]
    for mod_name, module in list(sys.modules.items()):
        if mod_name.startswith(prefix) and getattr(module, "get_file", None) is original:
            with contextlib.suppress(Exception):
                module.get_file = get_file  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- Colab

_COLAB_SOURCE = {
    "google.colab": '''
"""The grader's stand-in for Colab's helpers: the notebook runs outside Colab."""
__path__ = []
from google.colab import drive, files, output
''',
    "google.colab.drive": """
def mount(mountpoint="/content/drive", force_remount=False, *args, **kwargs):
    print("Note: Google Drive is not mounted while grading; files the assignment "
          "provides are where the rubric puts them.")

def flush_and_unmount(*args, **kwargs):
    return None
""",
    "google.colab.files": """
def upload(*args, **kwargs):
    print("Note: no files can be uploaded while grading.")
    return {}

def download(*args, **kwargs):
    return None
""",
    "google.colab.output": """
def enable_custom_widget_manager(*args, **kwargs):
    return None

def disable_custom_widget_manager(*args, **kwargs):
    return None

def clear(*args, **kwargs):
    return None

def eval_js(*args, **kwargs):
    return None
""",
    "google.colab.patches": """
def cv2_imshow(image, *args, **kwargs):
    return None
""",
}


class _ColabFinder:
    """Finds ``google.colab`` and its helpers (when no real Colab package exists)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> Any:
        if name not in _COLAB_SOURCE:
            return None
        return importlib.util.spec_from_loader(
            name,
            self,  # type: ignore[arg-type]
            is_package=name == "google.colab",
        )

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        if module.__name__ == "google.colab":
            module.__path__ = []
        exec(compile(_COLAB_SOURCE[module.__name__], "<grader colab>", "exec"), module.__dict__)


def _install_colab() -> None:
    if any(isinstance(f, _ColabFinder) for f in sys.meta_path):
        return
    try:
        real = importlib.util.find_spec("google.colab")
    except (ImportError, ValueError):
        real = None
    if real is not None:
        return
    try:
        has_google = importlib.util.find_spec("google") is not None
    except (ImportError, ValueError):
        has_google = False
    if not has_google and "google" not in sys.modules:
        google = type(sys)("google")
        google.__path__ = []
        sys.modules["google"] = google
    sys.meta_path.append(_ColabFinder())


# ---------------------------------------------------------------------- IPython

_PIP = re.compile(
    r"^\s*(?:[\"']?\S*?python[\d.]*(?:\.exe)?[\"']?\s+-m\s+)?pip3?\s+install\s+(?P<args>.*)$",
    re.IGNORECASE,
)
_OPTION_WITH_VALUE = {
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
    "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
    "--trusted-host", "--platform", "--python-version", "--implementation", "--abi",
    "--upgrade-strategy", "--progress-bar", "--log", "--cache-dir", "--src", "--proxy",
    "--timeout", "--retries", "--config-settings", "-C",
}  # fmt: skip


def pip_packages(command: str) -> list[str] | None:
    """The package names a ``pip install`` command line asks for (versions, extras and
    options dropped), or None when ``command`` is no pip install."""
    match = _PIP.match(command.split("&&")[0].split(";")[0])
    if match is None:
        return None
    words = match.group("args").split()
    names: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in _OPTION_WITH_VALUE
            continue
        word = word.strip("'\"")
        name = re.split(r"[\[<>=!~;@ ]", word, maxsplit=1)[0]
        if name:
            names.append(name)
    return names


def installed(name: str) -> bool:
    """True when a distribution (or an importable module) of that name is installed."""
    import importlib.metadata as md

    try:
        md.distribution(name)
        return True
    except md.PackageNotFoundError:
        pass
    try:
        return importlib.util.find_spec(name.replace("-", "_")) is not None
    except (ImportError, ValueError):
        return False


def _patch_ipython() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "__grader_shims__", False):
        return
    shell.__grader_shims__ = True
    original_system = shell.system

    def system(cmd: str, *args: Any, **kwargs: Any) -> Any:
        names = pip_packages(str(cmd))
        if names is None:
            return original_system(cmd, *args, **kwargs)
        missing = [n for n in names if not installed(n)]
        if not missing:
            shell.user_ns["_exit_code"] = 0
            return None
        line = (
            f"the grading environment lacks {', '.join(missing)} and cannot install "
            "packages (no network); ask your instructor to add it to the rubric's packages:"
        )
        print(line)
        _note_shell(f"pip install {' '.join(missing)}: not installed")
        shell.user_ns["_exit_code"] = 1
        return None

    shell.system = system
    magics = shell.magics_manager.magics.get("line", {})
    # IPython's own %cd, from an OSMagics of our own: the entry in ``magics`` may be a
    # lazy wrapper that looks ``cd`` up again (and would find this wrapper).
    try:
        from IPython.core.magics.osm import OSMagics

        original_cd = OSMagics(shell).cd  # type: ignore[no-untyped-call]
    except Exception:  # an IPython without it keeps its own %cd
        original_cd = None
    if original_cd is not None:

        def cd(parameter_s: str = "") -> Any:
            target = parameter_s.strip().strip("'\"")
            if (
                target
                and not target.startswith("-")
                and not os.path.isdir(os.path.expanduser(target))
            ):
                print(f"Note: %cd {target}: no such folder while grading; staying in {os.getcwd()}")
                _note_shell(f"%cd {target}: no such folder")
            return original_cd(parameter_s)

        magics["cd"] = cd
