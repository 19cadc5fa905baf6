"""The in-kernel half of the grader: seeds the RNGs and harvests answers to an outbox.

This module runs inside the student's Jupyter kernel. The grader loads it from its file
path (so a student's ``grader.py`` or ``numpy.py`` cannot shadow it) without binding any
name in the student's namespace, calls :func:`setup` once before the first cell and
:func:`harvest` after every cell.

Each requested answer is written to ``<outbox>/<name>.json``::

    {"name", "status", "type_name", "cell", "message", "value"}

``value`` is a JSON tree of numbers, strings, bools, null, lists and dicts with string
keys, plus tagged one-key dicts:

* ``{"__ndarray__": "<file>.npy"}`` - a NumPy array or torch tensor saved next to the
  JSON file with ``np.save(..., allow_pickle=False)``;
* ``{"__float__": "nan" | "inf" | "-inf"}`` - a non-finite float (JSON has none);
* ``{"__dict__": {key: value}}`` - a one-key student dict whose key is one of these tag
  names, so it is not mistaken for a tag.

Only stdlib and NumPy are imported at module import; torch is used only when the student
already imported it (a tensor cannot exist otherwise) or when :func:`setup` is asked to
seed it. Student objects are inspected with exact-type checks against a whitelist and
never have their own methods (``__eq__``, ``__float__``, ``__array__``, ``__len__``,
``__iter__`` ...) called, because a student object may lie or loop forever.
"""

from __future__ import annotations

import builtins
import contextlib
import fractions
import json
import math
import os
import random
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

# Private references taken at import, before any student cell runs, so a student who
# later monkeypatches json, numpy.save, os.replace or open cannot break the harness.
_open = builtins.open
_np_save = np.save
_os_replace = os.replace
_os_remove = os.remove
_path_join = os.path.join
_json_loads = json.loads
_json_encode = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
_isfinite = math.isfinite
_format_exception = traceback.format_exception
_ndarray = np.ndarray
# Descriptors read straight from ``type`` so a metaclass property cannot fake a name.
_type_module = type.__dict__["__module__"]
_type_qualname = type.__dict__["__qualname__"]

MAX_ELEMENTS = 10**7
MAX_DEPTH = 20
MAX_MODULE_RECORDS = 500
MAX_CAT_RECORDS = 500
MAX_TRACEBACK_CHARS = 4000
TAGS = frozenset({"__ndarray__", "__float__", "__dict__"})

_NP_INTS = frozenset(t for t in set(np.sctypeDict.values()) if issubclass(t, np.integer))
_NP_FLOATS = frozenset(t for t in set(np.sctypeDict.values()) if issubclass(t, np.floating))
# Array dtype kinds saved as .npy: bool, signed/unsigned int, float.
_NPY_KINDS = frozenset("biuf")
# Array dtype kinds converted element-wise through ``tolist``: object, unicode, bytes.
_LIST_KINDS = frozenset("OU")


class _State:
    """Module state: where to write, and what was written by earlier harvests."""

    outbox: str = ""
    seed: int = 0
    max_bytes: int = 64 * 2**20
    harvest_timeout_s: float = 60.0
    generation: int = 0
    files: dict[str, tuple[str, ...]] = {}  # noqa: RUF012 - one process-wide state
    probed: dict[str, object] = {}  # noqa: RUF012 - model objects already probed


class _Reject(Exception):
    """A value the harness will not encode; carries the answer status and message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def type_name(tp: type) -> str:
    """The qualified name of ``tp`` ("list", "numpy.ndarray", "torch.Tensor", ...)."""
    try:
        module = _type_module.__get__(tp)
        qualname = _type_qualname.__get__(tp)
    except Exception:
        return "<unknown type>"
    if type(module) is not str:
        module = "?"
    if type(qualname) is not str:
        qualname = "?"
    return qualname if module == "builtins" else f"{module}.{qualname}"


def setup(
    outbox: str,
    seed: int,
    *,
    seed_torch: bool = False,
    max_answer_bytes: int = 64 * 2**20,
    harvest_timeout_s: float = 60.0,
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
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if seed_torch or "torch" in sys.modules:
        try:
            import torch
        except ImportError:
            return
        torch.manual_seed(seed)


def harvest(ns: dict[str, Any], requests_json: str, cell: int, final: bool) -> None:
    """Write every requested top-level name of ``ns`` to the outbox.

    Plain values are written every time. A model is probed (a forward pass) only when
    the object bound to its name changed since the last probe, or on the ``final``
    harvest. A name no longer defined has its earlier file removed, so the outbox always
    shows the value the name holds now.
    """
    _State.generation += 1
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
        encoder = _Encoder(name)
        encoded = encoder.encode(value, "", 0) if status == "ok" else None
        _write_record(name, status, tname, cell, message, encoded, encoder.arrays)
        return
    encoder = _Encoder(name)
    try:
        encoded = encoder.encode(obj, "", 0)
        encoder.check_size(encoded)
    except _Reject as rej:
        _write_record(name, rej.status, tname, cell, rej.message, None, [])
        return
    _write_record(name, "ok", tname, cell, "", encoded, encoder.arrays)


class _Encoder:
    """Turns one answer into a JSON tree plus the arrays to save beside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.arrays: list[tuple[str, np.ndarray[Any, Any]]] = []
        self.elements = 0
        self.nbytes = 0

    def _count(self, n: int, where: str) -> None:
        self.elements += n
        if self.elements > MAX_ELEMENTS:
            raise _Reject(
                "too_large",
                f"{self.name}{where} makes the answer hold more than {MAX_ELEMENTS:,} "
                "elements; the grader reads at most that many",
            )

    def check_size(self, encoded: object) -> None:
        """Reject answers whose files would exceed the grader's per-answer byte cap."""
        total = self.nbytes + len(_json_encode(encoded))
        if total > _State.max_bytes:
            raise _Reject(
                "too_large",
                f"{self.name} takes {total / 2**20:.1f} MiB, more than the "
                f"{_State.max_bytes / 2**20:.0f} MiB the grader reads",
            )

    def encode(self, x: object, where: str, depth: int) -> object:
        """Encode ``x`` found at ``where`` (e.g. ``[2]['w']``) ``depth`` levels down."""
        if depth > MAX_DEPTH:
            raise _Reject(
                "unsupported",
                f"{self.name} is nested more than {MAX_DEPTH} levels deep (is a list "
                "inside itself?)",
            )
        tp = type(x)
        self._count(1, where)
        if x is None or tp is bool or tp is str:
            if tp is str:
                self._count(len(x), where)  # type: ignore[arg-type]
            return x
        if tp is int:
            if x.bit_length() > 8000:  # type: ignore[attr-defined]
                raise _Reject("too_large", f"{self.name}{where} is an integer too large to read")
            return x
        if tp is float:
            return _encode_float(x)  # type: ignore[arg-type]
        if tp is list or tp is tuple:
            items: list[object] = list(x)  # type: ignore[call-overload]
            self._count(len(items), where)
            return [self.encode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(items)]
        if tp is dict:
            return self._encode_dict(x, where, depth)  # type: ignore[arg-type]
        if tp is fractions.Fraction:
            return str(x)
        if tp in _NP_INTS:
            return int(x)  # type: ignore[call-overload]
        if tp in _NP_FLOATS:
            return _encode_float(float(x))  # type: ignore[arg-type]
        if tp is np.bool_:
            return bool(x)
        if tp is np.str_:
            return str(x)
        if tp is _ndarray:
            return self._encode_array(x, where, depth)  # type: ignore[arg-type]
        torch = sys.modules.get("torch")
        if torch is not None and (tp is torch.Tensor or tp is torch.nn.Parameter):
            return self._encode_tensor(x, where, torch)
        raise _Reject("unsupported", _unsupported_message(self.name, where, tp))

    def _encode_dict(self, x: dict[Any, Any], where: str, depth: int) -> object:
        items = list(dict.items(x))
        self._count(len(items), where)
        out: dict[str, object] = {}
        for key, value in items:
            if type(key) is not str:
                raise _Reject(
                    "unsupported",
                    f"{self.name}{where} is a dict with a {type_name(type(key))} key; "
                    "the grader reads dicts whose keys are strings",
                )
            out[key] = self.encode(value, f"{where}[{key!r}]", depth + 1)
        if len(out) == 1 and next(iter(out)) in TAGS:
            return {"__dict__": out}  # escape: would otherwise read back as a tag
        return out

    def _encode_array(self, x: np.ndarray[Any, Any], where: str, depth: int) -> object:
        kind = x.dtype.kind
        if kind in _NPY_KINDS and x.dtype.fields is None:
            return self._save(x, where)
        if kind in _LIST_KINDS:
            self._count(int(x.size), where)
            return self.encode(x.tolist(), where, depth)
        raise _Reject(
            "unsupported",
            f"{self.name}{where} is a NumPy array of dtype {x.dtype}, which the grader "
            "cannot read; use a numeric or bool array",
        )

    def _encode_tensor(self, x: Any, where: str, torch: Any) -> object:
        if x.layout is not torch.strided or x.is_quantized or x.device.type == "meta":
            raise _Reject(
                "unsupported",
                f"{self.name}{where} is a sparse, quantized or meta tensor; use a dense one",
            )
        if x.is_complex():
            raise _Reject("unsupported", f"{self.name}{where} is a complex tensor")
        self._count(int(x.numel()), where)
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.resolve_conj().resolve_neg()
        if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
            t = t.to(torch.float32)  # bfloat16 / float8 have no NumPy dtype
        return self._save(np.ascontiguousarray(t.numpy()), where)

    def _save(self, arr: np.ndarray[Any, Any], where: str) -> object:
        self._count(int(arr.size), where)
        self.nbytes += int(arr.nbytes)
        if self.nbytes > _State.max_bytes:
            raise _Reject(
                "too_large",
                f"{self.name}{where} makes the answer larger than the "
                f"{_State.max_bytes / 2**20:.0f} MiB the grader reads",
            )
        fname = f"{self.name}.{_State.generation}.{len(self.arrays)}.npy"
        self.arrays.append((fname, arr))
        return {"__ndarray__": fname}


def _encode_float(v: float) -> object:
    if _isfinite(v):
        return v
    if v != v:
        return {"__float__": "nan"}
    return {"__float__": "inf" if v > 0 else "-inf"}


def _unsupported_message(name: str, where: str, tp: type) -> str:
    return (
        f"{name}{where} is a {type_name(tp)}, which the grader cannot read; store the answer "
        "as a number, string, list, dict with string keys, NumPy array or torch tensor"
    )


def _describe(exc: BaseException) -> str:
    return f"{type_name(type(exc))}: {_safe_str(exc)}"


def _safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return "<unprintable>"
    return text if type(text) is str else "<unprintable>"


def _trim_traceback(exc: BaseException) -> str:
    try:
        text = "".join(_format_exception(exc))
    except Exception:
        return _describe(exc)
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    return text


# ----------------------------------------------------------------------------- files


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
    outbox = _State.outbox
    for fname, arr in arrays:
        path = _path_join(outbox, fname)
        with _open(path + ".tmp", "wb") as fh:
            _np_save(fh, arr, allow_pickle=False)
        _os_replace(path + ".tmp", path)
    record = {
        "name": name,
        "status": status,
        "type_name": tname,
        "cell": cell,
        "message": message,
        "value": value,
    }
    text = _json_encode(record)
    tmp = _path_join(outbox, f".{name}.json.tmp")
    with _open(tmp, "w", encoding="ascii") as fh:
        fh.write(text)
    _os_replace(tmp, _path_join(outbox, f"{name}.json"))
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
    """Probe a ``torch.nn.Module``: returns (status, message, value)."""
    torch = sys.modules.get("torch")
    tp = type(obj)
    if torch is None or not issubclass(tp, torch.nn.Module):
        # Without torch imported the object cannot be a Module; do not import it.
        return "unsupported", f"{name} must be a torch.nn.Module, got {type_name(tp)}", None
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
    }
    modes = [(m, bool(m.training)) for m in model.modules()]
    modules: list[dict[str, object]] = []
    cat_calls: list[dict[str, object]] = []
    handles = []
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
