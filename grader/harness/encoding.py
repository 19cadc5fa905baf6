"""Plain-data encoding shared by the code that runs INSIDE the sandbox.

Both the notebook harness (:mod:`grader.harness.kernel`) and the module worker
(:mod:`grader.harness.worker`) encode student values with this module. It arrives in the
sandbox as source text (the sandbox binds nothing of the grader's tree) and is executed
into a module registered as ``__grader_encoding__`` before any student code runs; in the
grader's own process it is simply ``grader.harness.encoding``. It imports only the
standard library and NumPy, and never ``grader``; torch, TensorFlow, Keras and JAX values
are recognised only through modules the student's code already imported (``sys.modules``),
so a torch-only notebook never pays for TensorFlow. A ``tf.TensorShape`` becomes a list
whose unknown dimensions are ``null``.

A value becomes a JSON tree of numbers, strings, bools, null, lists and dicts with string
keys, plus tagged one-key dicts:

* ``{"__ndarray__": "<file>.npy"}`` - a NumPy array, a torch, TensorFlow or JAX tensor,
  or a TensorFlow or Keras variable saved next to the JSON file with
  ``np.save(..., allow_pickle=False)``;
* ``{"__float__": "nan" | "inf" | "-inf"}`` - a non-finite float (JSON has none);
* ``{"__dict__": {key: value}}`` - a one-key student dict whose key is one of these tag
  names, so it is not mistaken for a tag.

Student objects are inspected with exact-type checks against a whitelist and never have
their own methods (``__eq__``, ``__float__``, ``__array__``, ``__len__``, ``__iter__``
...) called, because a student object may lie or loop forever. Tuples are encoded as
lists. Subclasses of tuple, list and dict (``torch.Size``, named tuples, ``OrderedDict``)
are read through the BASE type's own C methods (``tuple.__iter__(x)``, ``dict.items(x)``),
which read the object's storage directly and cannot be overridden by the subclass; a
``dict`` subclass is read in its storage order (an ``OrderedDict`` reordered with
``move_to_end`` may come out in insertion order, which no check depends on).
"""

from __future__ import annotations

import builtins
import fractions
import json
import math
import os
import sys
import traceback
from typing import Any

import numpy as np

# Private references taken at import, before any student code runs, so a student who
# later monkeypatches json, numpy.save, os.replace or open cannot break the harness.
_open = builtins.open
_np_save = np.save
_os_replace = os.replace
_path_join = os.path.join
_json_encode = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
_isfinite = math.isfinite
_format_exception = traceback.format_exception
_ndarray = np.ndarray
# The base types' own slots: calling them on a subclass instance reads the C storage and
# never dispatches to a method the subclass defines.
_tuple_iter = tuple.__iter__
_list_iter = list.__iter__
_dict_items = dict.items
# Descriptors read straight from ``type`` so a metaclass property cannot fake a name.
_type_module = type.__dict__["__module__"]
_type_qualname = type.__dict__["__qualname__"]

MAX_ELEMENTS = 10**7
MAX_DEPTH = 20
MAX_TRACEBACK_CHARS = 4000
TAGS = frozenset({"__ndarray__", "__float__", "__dict__"})

# timedelta64 subclasses np.signedinteger but is a duration, not a number.
_NP_INTS = frozenset(
    t
    for t in set(np.sctypeDict.values())
    if issubclass(t, np.integer) and not issubclass(t, np.timedelta64)
)
_NP_FLOATS = frozenset(t for t in set(np.sctypeDict.values()) if issubclass(t, np.floating))
# Array dtype kinds saved as .npy: bool, signed/unsigned int, float.
_NPY_KINDS = frozenset("biuf")
# Array dtype kinds converted element-wise through ``tolist``: object, unicode, bytes.
_LIST_KINDS = frozenset("OU")


class Reject(Exception):
    """A value that will not be encoded; carries the answer status and message."""

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


class Encoder:
    """Turns one answer into a JSON tree plus the arrays to save beside it."""

    def __init__(self, name: str, max_bytes: int, file_stem: str) -> None:
        self.name = name  # how messages name the value ("q2_O", "affine_forward returned")
        self.max_bytes = max_bytes
        self.file_stem = file_stem  # array files are <file_stem>.<n>.npy
        self.arrays: list[tuple[str, np.ndarray[Any, Any]]] = []
        self.elements = 0
        self.nbytes = 0

    def _count(self, n: int, where: str) -> None:
        self.elements += n
        if self.elements > MAX_ELEMENTS:
            raise Reject(
                "too_large",
                f"{self.name}{where} makes the answer hold more than {MAX_ELEMENTS:,} "
                "elements; the grader reads at most that many",
            )

    def check_size(self, encoded: object) -> None:
        """Reject answers whose files would exceed the grader's per-answer byte cap."""
        total = self.nbytes + len(_json_encode(encoded))
        if total > self.max_bytes:
            raise Reject(
                "too_large",
                f"{self.name} takes {total / 2**20:.1f} MiB, more than the "
                f"{self.max_bytes / 2**20:.0f} MiB the grader reads",
            )

    def encode(self, x: object, where: str, depth: int) -> object:
        """Encode ``x`` found at ``where`` (e.g. ``[2]['w']``) ``depth`` levels down."""
        if depth > MAX_DEPTH:
            raise Reject(
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
                raise Reject("too_large", f"{self.name}{where} is an integer too large to read")
            return x
        if tp is float:
            return encode_float(x)  # type: ignore[arg-type]
        items = sequence_items(x)
        if items is not None:
            self._count(len(items), where)
            return [self.encode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(items)]
        if tp is dict or issubclass(tp, dict):
            return self._encode_dict(x, where, depth)  # type: ignore[arg-type]
        if tp is fractions.Fraction:
            return str(x)
        if tp in _NP_INTS:
            return int(x)  # type: ignore[call-overload]
        if tp in _NP_FLOATS:
            return encode_float(float(x))  # type: ignore[arg-type]
        if tp is np.bool_:
            return bool(x)
        if tp is np.str_:
            return str(x)
        if tp is _ndarray:
            return self._encode_array(x, where, depth)  # type: ignore[arg-type]
        torch = sys.modules.get("torch")
        if torch is not None and (tp is torch.Tensor or tp is torch.nn.Parameter):
            return self._encode_tensor(x, where, torch)
        kind = framework_kind(tp)
        if kind is not None:
            return self._encode_framework(x, kind, where, depth)
        raise Reject("unsupported", unsupported_message(self.name, where, tp))

    def _encode_framework(self, x: Any, kind: str, where: str, depth: int) -> object:
        """A TensorFlow tensor or variable, a ``tf.TensorShape``, a Keras variable or a
        JAX array, read through its own framework's (exact, whitelisted) class."""
        if kind == "shape":
            if x.rank is None:  # TensorShape's own property
                raise Reject(
                    "unsupported",
                    f"{self.name}{where} is a tf.TensorShape of unknown rank; store the "
                    "shape as a tuple of whole numbers",
                )
            return self.encode(x.as_list(), where, depth + 1)  # ints, None unknown
        if kind == "keras_variable":
            # The backend's own variable (tf.Variable, torch Parameter, jax array).
            return self.encode(x.value, where, depth + 1)
        try:
            arr = np.asarray(x.numpy() if kind == "tf" else x)
        except Exception as exc:
            raise Reject(
                "unsupported",
                f"{self.name}{where} is a {type_name(type(x))} that could not be copied to "
                f"the CPU ({describe(exc)}); store it as a NumPy array (x.numpy())",
            ) from None
        if "float" in arr.dtype.name and arr.dtype not in (np.float16, np.float32, np.float64):
            arr = arr.astype(np.float32)  # bfloat16, float8 (ml_dtypes) have no .npy form
        if arr.dtype.kind in _NPY_KINDS:
            return self._save(np.ascontiguousarray(arr).reshape(arr.shape), where)
        if arr.dtype.kind == "O" or arr.dtype.kind == "S":
            raise Reject(
                "unsupported",
                f"{self.name}{where} is a string tensor; store the text as a Python str",
            )
        return self._encode_array(arr, where, depth)

    def _encode_dict(self, x: dict[Any, Any], where: str, depth: int) -> object:
        items = list(_dict_items(x))
        self._count(len(items), where)
        out: dict[str, object] = {}
        for key, value in items:
            if type(key) is not str:
                raise Reject(
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
        raise Reject(
            "unsupported",
            f"{self.name}{where} is a NumPy array of dtype {x.dtype}, which the grader "
            "cannot read; use a numeric or bool array",
        )

    def _encode_tensor(self, x: Any, where: str, torch: Any) -> object:
        """A tensor (exactly ``torch.Tensor`` or ``nn.Parameter``) on any device as .npy."""
        device = x.device.type
        if device == "meta":
            raise Reject(
                "unsupported",
                f"{self.name}{where} is a tensor on the meta device, which holds no values; "
                "compute it on the CPU or a GPU",
            )
        if x.layout is not torch.strided or x.is_quantized:
            raise Reject(
                "unsupported",
                f"{self.name}{where} is a sparse or quantized tensor; use a dense one "
                "(x.to_dense() or x.dequantize())",
            )
        if x.is_complex():
            raise Reject(
                "unsupported",
                f"{self.name}{where} is a complex tensor; the grader reads real, integer "
                "and bool tensors",
            )
        self._count(int(x.numel()), where)
        try:
            t = x.detach()
            if t.is_floating_point() and t.dtype not in (
                torch.float16,
                torch.float32,
                torch.float64,
            ):
                t = t.to(torch.float32)  # bfloat16 / float8 have no NumPy dtype
            # force=True is documented as detach().cpu().resolve_conj().resolve_neg()
            # .numpy(): one call that copies from any device (CUDA, MPS, XPU) and resolves
            # conjugate and negative views, instead of a device test of our own.
            arr = t.numpy(force=True)
        except Exception as exc:
            raise Reject(
                "unsupported",
                f"{self.name}{where} is a {x.dtype} tensor on {device} that could not be "
                f"copied to the CPU ({describe(exc)}); store it as x.detach().cpu()",
            ) from None
        # ascontiguousarray turns a 0-d array into shape (1,): reshape keeps the 0-d tensor
        return self._save(np.ascontiguousarray(arr).reshape(arr.shape), where)

    def _save(self, arr: np.ndarray[Any, Any], where: str) -> object:
        self._count(int(arr.size), where)
        self.nbytes += int(arr.nbytes)
        if self.nbytes > self.max_bytes:
            raise Reject(
                "too_large",
                f"{self.name}{where} makes the answer larger than the "
                f"{self.max_bytes / 2**20:.0f} MiB the grader reads",
            )
        fname = f"{self.file_stem}.{len(self.arrays)}.npy"
        self.arrays.append((fname, arr))
        return {"__ndarray__": fname}


# Where the framework classes live, looked up in ``sys.modules`` only: a framework the
# student never imported cannot have made the value, and is never imported here.
_TF_TENSOR_CLASSES = (
    ("tensorflow.python.framework.ops", "EagerTensor"),
    ("tensorflow.python.ops.resource_variable_ops", "ResourceVariable"),
    ("tensorflow.python.ops.resource_variable_ops", "UninitializedVariable"),
)
_TF_SHAPE_CLASSES = (("tensorflow.python.framework.tensor_shape", "TensorShape"),)
_KERAS_VARIABLE_CLASSES = (
    ("keras.src.backend", "Variable"),
    ("keras.src.backend.tensorflow.core", "Variable"),
    ("keras.src.backend.torch.core", "Variable"),
    ("keras.src.backend.jax.core", "Variable"),
    ("keras.src.backend.numpy.core", "Variable"),
)
_JAX_ARRAY_CLASSES = (("jaxlib._jax", "ArrayImpl"), ("jaxlib.xla_extension", "ArrayImpl"))


def _is_one_of(tp: type, where: tuple[tuple[str, str], ...]) -> bool:
    for module_name, cls_name in where:
        module = sys.modules.get(module_name)
        if module is not None and tp is getattr(module, cls_name, None):
            return True
    return False


def framework_kind(tp: type) -> str | None:
    """``"tf"``, ``"shape"`` (tf.TensorShape), ``"keras_variable"`` or ``"jax"`` when
    ``tp`` is exactly one of those frameworks' value classes, else None."""
    if "tensorflow" in sys.modules:
        if _is_one_of(tp, _TF_TENSOR_CLASSES):
            return "tf"
        if _is_one_of(tp, _TF_SHAPE_CLASSES):
            return "shape"
    if "keras" in sys.modules and _is_one_of(tp, _KERAS_VARIABLE_CLASSES):
        return "keras_variable"
    if "jax" in sys.modules and _is_one_of(tp, _JAX_ARRAY_CLASSES):
        return "jax"
    return None


def sequence_items(x: object) -> list[object] | None:
    """The items of a list or tuple, subclasses included; None for anything else.

    A subclass (``torch.Size``, a named tuple, a student's ``class Row(tuple)``) is read
    with the base type's own iterator, so an ``__iter__``, ``__len__`` or ``__getitem__``
    the subclass defines is never called. ``issubclass`` against the exact built-in type
    takes CPython's fast path through the real MRO, without ``__subclasscheck__``.
    """
    tp = type(x)
    if issubclass(tp, tuple):
        return list(_tuple_iter(x))  # type: ignore[arg-type]
    if issubclass(tp, list):
        return list(_list_iter(x))  # type: ignore[arg-type]
    return None


def encode_float(v: float) -> object:
    """``v`` for JSON: itself when finite, else a ``__float__`` tag."""
    if _isfinite(v):
        return v
    if v != v:
        return {"__float__": "nan"}
    return {"__float__": "inf" if v > 0 else "-inf"}


ACCEPTED_FORMS = (
    "a number (int, float, NumPy, torch or TensorFlow scalar, or a fraction string such as "
    '"7/4"), a string, a list or tuple (torch.Size, tf.TensorShape and named tuples '
    "included), a dict with string keys, a NumPy array, a torch tensor, or a TensorFlow "
    "tensor or variable"
)


def unsupported_message(name: str, where: str, tp: type) -> str:
    """Why ``tp`` is refused, naming the forms the handouts accept instead."""
    hint = ""
    if issubclass(tp, _ndarray):
        hint = " (an ndarray subclass: store np.asarray(x))"
    else:
        torch = sys.modules.get("torch")
        if torch is not None and issubclass(tp, torch.Tensor):
            hint = " (a torch.Tensor subclass: store x.as_subclass(torch.Tensor))"
    return (
        f"{name}{where} is a {type_name(tp)}, which the grader cannot read{hint}; store the "
        f"answer as {ACCEPTED_FORMS}"
    )


def describe(exc: BaseException) -> str:
    return f"{type_name(type(exc))}: {safe_str(exc)}"


def safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        return "<unprintable>"
    return text if type(text) is str else "<unprintable>"


def trim_traceback(exc: BaseException) -> str:
    try:
        text = "".join(_format_exception(exc))
    except Exception:
        return describe(exc)
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    return text


# ----------------------------------------------------------------------------- files


def encode_json(value: object) -> str:
    """Compact ASCII JSON, refusing NaN and infinities (encode them first)."""
    return _json_encode(value)


def save_arrays(outbox: str, arrays: list[tuple[str, np.ndarray[Any, Any]]]) -> None:
    """Write each ``(file name, array)`` into ``outbox`` atomically, without pickles."""
    for fname, arr in arrays:
        path = _path_join(outbox, fname)
        with _open(path + ".tmp", "wb") as fh:
            _np_save(fh, arr, allow_pickle=False)
        _os_replace(path + ".tmp", path)


def write_json(outbox: str, fname: str, record: object) -> None:
    """Atomically replace ``<outbox>/<fname>`` with ``record`` as JSON."""
    text = _json_encode(record)
    tmp = _path_join(outbox, f".{fname}.tmp")
    with _open(tmp, "w", encoding="ascii") as fh:
        fh.write(text)
    _os_replace(tmp, _path_join(outbox, fname))
