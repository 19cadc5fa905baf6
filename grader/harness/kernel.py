"""The in-kernel half of the grader: seeds the RNGs and harvests answers to an outbox.

This module runs inside the student's Jupyter kernel. The grader loads it from its file
path (so a student's ``grader.py`` or ``numpy.py`` cannot shadow it) without binding any
name in the student's namespace, calls :func:`setup` once before the first cell and
:func:`harvest` after every cell.

Each requested answer is written to ``<outbox>/<name>.json``::

    {"name", "status", "type_name", "cell", "message", "value"}

``value`` is encoded by :mod:`grader.harness.encoding` (shared with the module worker):
a JSON tree whose arrays are ``.npy`` files beside it, never pickles.

Only stdlib and NumPy are imported at module import; torch is used only when the student
already imported it (a tensor cannot exist otherwise) or when :func:`setup` is asked to
seed it. Student objects are inspected with exact-type checks against a whitelist and
never have their own methods (``__eq__``, ``__float__``, ``__array__``, ``__len__``,
``__iter__`` ...) called, because a student object may lie or loop forever.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import math
import os
import random
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

# The shared encoder: sent as source text and registered as ``__grader_encoding__`` in
# the sandbox (the notebook runner does that before this module runs), imported from the
# package in the grader's own process.
if TYPE_CHECKING:
    from grader.harness import encoding as _encoding
    from grader.harness import recorders as _recorders
    from grader.harness import shims as _shims
else:
    _encoding = sys.modules.get("__grader_encoding__") or importlib.import_module(
        "grader.harness.encoding"
    )
    # The structure recorders, registered the same way (``__grader_recorders__``) and
    # taken here, before any student cell could replace the registered module.
    _recorders = sys.modules.get("__grader_recorders__") or importlib.import_module(
        "grader.harness.recorders"
    )
    # The Colab/Kaggle/GPU-habit shims, registered the same way (``__grader_shims__``).
    _shims = sys.modules.get("__grader_shims__") or importlib.import_module("grader.harness.shims")

# The Keras adapter (:mod:`grader.harness.keras_adapter`) is loaded only once the student's
# code has imported Keras or Keras Tuner (no model or tuner can be theirs before), so a
# torch-only kernel never compiles it. In the sandbox the notebook runner sets
# ``_keras_source`` (the adapter's source text) after this module runs; in the grader's
# own process the package module is imported; ``""``: the runner sent none (the notebook
# never mentions Keras), so no object is treated as a Keras model or tuner.
_keras_source: str | None = None
_KERAS_MODULES = ("keras", "tf_keras", "keras_tuner")
_loaded_adapter: list[Any] = []
_compile = compile
_exec = exec
_ModuleType = type(sys)


def _keras() -> Any:
    """The Keras adapter, or None while no Keras package is imported."""
    if _loaded_adapter:
        return _loaded_adapter[0]
    if _keras_source == "" or not any(name in sys.modules for name in _KERAS_MODULES):
        return None
    if _keras_source is None:
        adapter: Any = importlib.import_module("grader.harness.keras_adapter")
    else:
        adapter = _ModuleType("__grader_keras__")
        adapter.__file__ = "<grader keras adapter>"
        _exec(_compile(_keras_source, "<grader keras adapter>", "exec"), adapter.__dict__)
    _loaded_adapter.append(adapter)
    return adapter


Encoder = _encoding.Encoder
Reject = _encoding.Reject
type_name = _encoding.type_name
_describe = _encoding.describe
_trim_traceback = _encoding.trim_traceback

# Private references taken at import, before any student cell runs, so a student who
# later monkeypatches json, os.remove or open cannot break the harness.
_os_remove = os.remove
_path_join = os.path.join
_json_loads = json.loads
_type_qualname = type.__dict__["__qualname__"]

MAX_MODULE_RECORDS = 500
MAX_CAT_RECORDS = 500


class _State:
    """Module state: where to write, and what was written by earlier harvests."""

    outbox: str = ""
    seed: int = 0
    max_bytes: int = 64 * 2**20
    harvest_timeout_s: float = 60.0
    generation: int = 0
    files: dict[str, tuple[str, ...]] = {}  # noqa: RUF012 - one process-wide state
    probed: dict[str, object] = {}  # noqa: RUF012 - model objects already probed


def setup(
    outbox: str,
    seed: int,
    *,
    seed_torch: bool = False,
    max_answer_bytes: int = 64 * 2**20,
    harvest_timeout_s: float = 60.0,
    shims: bool = False,
    cuda_on_cpu: bool = True,
) -> None:
    """Prepare the kernel before the first student cell.

    Seeds ``random`` and NumPy's global generator with ``seed``, and torch when it is
    already imported or ``seed_torch`` asks for it (the grader passes that when the
    notebook mentions torch, to avoid a slow import in notebooks that never use it).
    """
    _State.outbox = str(outbox)
    _State.seed = int(seed)
    _State.max_bytes = int(max_answer_bytes)
    _State.harvest_timeout_s = float(harvest_timeout_s)
    _State.generation = 0
    _State.files = {}
    _State.probed = {}
    _inline_figures()
    if shims:
        # Before any student cell and before torch is seeded: torch may be preloaded.
        _shims.install(cuda_on_cpu=cuda_on_cpu)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _seed_tensorflow(seed)
    if seed_torch or "torch" in sys.modules:
        try:
            import torch
        except ImportError:
            return
        torch.manual_seed(seed)


def _seed_tensorflow(seed: int) -> None:
    """Seed TensorFlow's global generator: now when it is already imported (a warm
    template preloads it for a rubric declaring ``frameworks: [tensorflow]``), else as
    soon as the student's code imports it, so warm and cold kernels draw alike. Neither
    TensorFlow nor Keras is imported here: a torch-only notebook pays nothing, and a
    student's ``KERAS_BACKEND`` still chooses Keras's backend. Keras 3's own random ops
    draw their seeds from ``random``, seeded by :func:`setup`."""
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        with contextlib.suppress(Exception):
            tf.random.set_seed(seed)
        return
    for finder in list(sys.meta_path):
        if type(finder).__name__ == "_SeedOnImport":
            sys.meta_path.remove(finder)
    sys.meta_path.insert(0, _SeedOnImport(seed))


class _SeedOnImport:
    """A one-shot import hook: finds ``tensorflow`` with the other finders and seeds it
    once its module has run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def find_spec(self, name: str, path: object = None, target: object = None) -> Any:
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        run = getattr(loader, "exec_module", None)
        if run is None:
            return spec
        seed = self.seed

        def exec_module(module: Any) -> None:
            run(module)
            with contextlib.suppress(Exception):
                module.random.set_seed(seed)

        loader.exec_module = exec_module  # type: ignore[union-attr]
        return spec


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def _inline_figures() -> None:
    """Show figures inline, as Jupyter does, so ``plt.show()`` yields an image output.

    ipykernel makes the inline backend the default only when ``MPLBACKEND`` is unset,
    and the sandbox sets it to Agg for its headless workers; students rely on Jupyter's
    default (``figure`` checks look for the image outputs a section displays).
    """
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    if "matplotlib" in sys.modules:  # imported before the first cell (a warm template)
        with contextlib.suppress(Exception):
            sys.modules["matplotlib"].use(INLINE_BACKEND)


def harvest(ns: dict[str, Any], requests_json: str, cell: int, final: bool) -> None:
    """Write every requested top-level name of ``ns`` to the outbox.

    Plain values are written every time. A model is probed (a forward pass) only when
    the object bound to its name changed since the last probe, or on the ``final``
    harvest. A name no longer defined has its earlier file removed, so the outbox always
    shows the value the name holds now.
    """
    _State.generation += 1
    with contextlib.suppress(Exception):  # notes are informative; answers come first
        _shims.write_notes(_State.outbox)
    requests = _json_loads(requests_json)
    for request in requests:
        name = request["name"]
        if type(name) is not str or not name.isidentifier():
            continue
        try:
            _harvest_one(ns, request, name, cell, final)
        except KeyboardInterrupt:
            # The grader interrupts a harvest that takes too long (a slow forward pass).
            # Record that for this answer and carry on with the others.
            _write_record(
                name,
                "error",
                "",
                cell,
                f"reading {name} took longer than {_State.harvest_timeout_s:g} s and was "
                "stopped (does the model's forward pass finish on a small batch?)",
                None,
                [],
            )
        except Exception as exc:
            _write_record(
                name,
                "error",
                "",
                cell,
                f"the grader could not read {name}: {_describe(exc)}",
                None,
                [],
            )


def _harvest_one(
    ns: dict[str, Any], request: dict[str, Any], name: str, cell: int, final: bool
) -> None:
    sentinel = _State
    obj = dict.get(ns, name, sentinel)
    if obj is sentinel:
        _State.probed.pop(name, None)
        _remove_answer(name)
        return
    tname = type_name(type(obj))
    if request.get("kind") == "model":
        if not final and _State.probed.get(name, sentinel) is obj:
            return  # unchanged model: keep the earlier probe, a forward pass is costly
        _State.probed[name] = obj
        status, message, value = _probe_model(name, obj, request.get("probe") or {})
        encoder = Encoder(name, _State.max_bytes, f"{name}.{_State.generation}")
        encoded = encoder.encode(value, "", 0) if status == "ok" else None
        _write_record(name, status, tname, cell, message, encoded, encoder.arrays)
        return
    # A Keras Tuner tuner, trial or hyper-parameters: its plain trials (search checks).
    adapter = _keras()
    if adapter is not None:
        obj = adapter.plain_tuner(obj)
    encoder = Encoder(name, _State.max_bytes, f"{name}.{_State.generation}")
    try:
        encoded = encoder.encode(obj, "", 0)
        encoder.check_size(encoded)
    except Reject as rej:
        _write_record(name, rej.status, tname, cell, rej.message, None, [])
        return
    _write_record(name, "ok", tname, cell, "", encoded, encoder.arrays)


def _write_record(
    name: str,
    status: str,
    tname: str,
    cell: int,
    message: str,
    value: object,
    arrays: list[tuple[str, np.ndarray[Any, Any]]],
) -> None:
    """Atomically replace ``<name>.json``; arrays first, so the JSON never dangles."""
    _encoding.save_arrays(_State.outbox, arrays)
    record = {
        "name": name,
        "status": status,
        "type_name": tname,
        "cell": cell,
        "message": message,
        "value": value,
    }
    _encoding.write_json(_State.outbox, f"{name}.json", record)
    new_files = tuple(fname for fname, _ in arrays)
    _remove_files(name, keep=new_files)
    _State.files[name] = new_files


def _remove_answer(name: str) -> None:
    path = _path_join(_State.outbox, f"{name}.json")
    with contextlib.suppress(FileNotFoundError):
        _os_remove(path)
    _remove_files(name, keep=())
    _State.files.pop(name, None)


def _remove_files(name: str, keep: tuple[str, ...]) -> None:
    for fname in _State.files.get(name, ()):
        if fname not in keep:
            with contextlib.suppress(OSError):
                _os_remove(_path_join(_State.outbox, fname))


# ----------------------------------------------------------------------------- models


def _probe_model(name: str, obj: object, spec: dict[str, Any]) -> tuple[str, str, object]:
    """Probe a ``torch.nn.Module`` or a Keras model: returns (status, message, value).

    A Keras model (Keras 3 on any backend, ``tf.keras``) goes through the Keras adapter
    (:mod:`grader.harness.keras_adapter`), which returns the same plain probe data; it
    is tried first because a Keras 3 model on the torch backend is also a Module."""
    adapter = _keras()
    keras = adapter.keras_of(obj) if adapter is not None else None
    if keras is not None:
        return "ok", "", adapter.probe(keras, obj, spec, _describe, _trim_traceback)
    torch = sys.modules.get("torch")
    tp = type(obj)
    if torch is None or not issubclass(tp, torch.nn.Module):
        # Without torch imported the object cannot be a Module; do not import it.
        return (
            "unsupported",
            f"{name} must be a torch.nn.Module or a Keras model, got {type_name(tp)}",
            None,
        )
    model: Any = obj
    result: dict[str, object] = {
        "ran": False,
        "error": None,
        "traceback": None,
        "output_type": None,
        "output_shape": None,
        "output_dtype": None,
        "output_min": None,
        "output_max": None,
        "output_finite": None,
        "trainable_params": None,
        "total_params": None,
        "cat_calls": [],
        "modules": [],
        "structure": None,  # grader.harness.recorders' record of the forward pass
    }
    modes = [(m, bool(m.training)) for m in model.modules()]
    modules: list[dict[str, object]] = []
    cat_calls: list[dict[str, object]] = []
    handles = []
    structure = _recorders.Recorder(torch, model)
    try:
        x = _probe_input(torch, spec)
        model.eval()
        for qname, mod in model.named_modules():
            if next(iter(mod.children()), None) is None:
                handles.append(mod.register_forward_hook(_module_hook(torch, qname, mod, modules)))
        recorder = _cat_recorder_class(torch)(cat_calls)
        with torch.random.fork_rng(devices=[]), torch.no_grad(), recorder:
            # Forked RNG: the probe neither depends on nor disturbs the student's stream.
            torch.manual_seed(int(spec.get("seed", 0)))
            # Every module that ran and torch function called, for ``structure`` checks
            # (cheap beside the cat recorder's mode, so always on).
            with structure:
                out = model(x)
        result["ran"] = True
        result.update(_describe_output(torch, out))
    except (Exception, SystemExit) as exc:
        result["error"] = _describe(exc)
        result["traceback"] = _trim_traceback(exc)
    finally:
        for handle in handles:
            handle.remove()
        # Restore each module's own flag: a later training cell must see what it set.
        for mod, training in modes:
            mod.training = training
    result["modules"] = modules
    result["cat_calls"] = cat_calls
    result["structure"] = structure.record()
    # Counted after the forward pass so lazy modules have materialised their weights.
    try:
        params = list(model.parameters())
        result["trainable_params"] = sum(int(p.numel()) for p in params if p.requires_grad)
        result["total_params"] = sum(int(p.numel()) for p in params)
    except Exception:
        pass
    return "ok", "", result


def _probe_input(torch: Any, spec: dict[str, Any]) -> Any:
    shape = tuple(int(s) for s in spec.get("input_shape", ()))
    low = float(spec.get("low", 0.0))
    high = float(spec.get("high", 1.0))
    dtype = getattr(torch, str(spec.get("dtype", "float32")), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown probe dtype {spec.get('dtype')!r}")
    gen = torch.Generator().manual_seed(int(spec.get("seed", 0)))
    if dtype.is_floating_point:
        x = torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low
        return x.to(dtype)
    lo, hi = math.ceil(low), math.floor(high)
    return torch.randint(lo, hi + 1, shape, generator=gen, dtype=torch.int64).to(dtype)


def _shape_of(torch: Any, value: object) -> object:
    tp = type(value)
    if tp is torch.Tensor or tp is torch.nn.Parameter:
        return [int(s) for s in value.shape]  # type: ignore[attr-defined]
    if tp is tuple or tp is list:
        return [_shape_of(torch, v) for v in list(value)[:16]]  # type: ignore[call-overload]
    return None


def _module_hook(
    torch: Any, qname: str, mod: object, records: list[dict[str, object]]
) -> Callable[..., None]:
    cls = _type_qualname.__get__(type(mod))

    def hook(module: object, args: object, output: object) -> None:
        if len(records) < MAX_MODULE_RECORDS:
            records.append({"name": qname, "type": cls, "output_shape": _shape_of(torch, output)})

    return hook


def _describe_output(torch: Any, out: Any) -> dict[str, object]:
    tp = type(out)
    info: dict[str, object] = {"output_type": type_name(tp)}
    if tp is not torch.Tensor and tp is not torch.nn.Parameter:
        info["output_shape"] = _shape_of(torch, out)
        return info
    info["output_shape"] = [int(s) for s in out.shape]
    info["output_dtype"] = str(out.dtype).removeprefix("torch.")
    if out.numel() > 0 and not out.is_complex():
        v = out.detach().to(torch.float64)
        info["output_min"] = float(v.min())
        info["output_max"] = float(v.max())
        info["output_finite"] = bool(torch.isfinite(v).all())
    elif out.numel() == 0:
        info["output_finite"] = True
    return info


_CAT_RECORDER: list[type] = []


def _cat_recorder_class(torch: Any) -> type:
    """A TorchFunctionMode recording torch.cat/concat/concatenate (built on first use)."""
    if _CAT_RECORDER:
        return _CAT_RECORDER[0]
    cat_funcs = (torch.cat, torch.concat, torch.concatenate)

    class CatRecorder(torch.overrides.TorchFunctionMode):  # type: ignore[misc]
        def __init__(self, records: list[dict[str, object]]) -> None:
            super().__init__()
            self.records = records

        def __torch_function__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            if any(func is f for f in cat_funcs) and len(self.records) < MAX_CAT_RECORDS:
                # Recording must never break the student's forward pass.
                with contextlib.suppress(Exception):
                    self.records.append(_cat_record(args, kwargs))
            return func(*args, **kwargs)

    _CAT_RECORDER.append(CatRecorder)
    return CatRecorder


def _cat_record(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, object]:
    tensors = list(args[0] if args else kwargs.get("tensors", ()))
    dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0))
    shapes = [[int(s) for s in t.shape] for t in tensors[:64]]
    if type(dim) is int and dim < 0 and shapes:
        dim += max(len(shapes[0]), 1)
    return {
        "n_inputs": len(tensors),
        "dim": dim if type(dim) is int else str(dim),
        "shapes": shapes,
    }
