"""Structure recorders: what a student's model or function did while it ran.

A :class:`Recorder` is a context manager installed around one forward pass (the model
probe in :mod:`grader.harness.kernel`) or one function call (the module worker,
:mod:`grader.harness.worker`). While it is active it records, observed at run time and
never read from names or source:

* every module whose forward ran (torch's global forward hooks), in call order, with
  its type, its name inside the probed model, its nesting depth and its output shape:
  the layer list;
* every torch function called (a ``torch.overrides.TorchFunctionMode``), counted by
  its canonical name (``torch.nn.functional.softmax``, ``torch.Tensor.softmax``,
  ``torch.autograd.grad``, ``torch.Tensor.backward`` …);
* for a model, the parameters inside modules of each type.

Only the outermost torch call is seen: while a torch function runs, the mode is
suspended, so ``F.softmax`` is recorded and the ``Tensor.softmax`` it calls inside is
not; ``nn.MultiheadAttention`` shows as the module plus
``torch.nn.functional.multi_head_attention_forward``. A module counts as run only when
it is called (``layer(x)``); calling ``layer.forward(x)`` directly bypasses torch's hooks
(its functions are still recorded).

Every size is bounded (:data:`MAX_LAYERS` rows, :data:`MAX_NAMES` distinct function
names, :data:`MAX_TYPES` module types): a loop calling ``matmul`` a million times adds
one counter, not a million entries. The record is plain JSON data (:meth:`Recorder.record`).

**Trust.** The recorders run in the student's own process, which can tamper with them
(remove the hooks, pop the mode, patch torch). They catch mistakes and shortcuts, not a
determined attacker, who could in any case reach neither other students nor the answers:
the sandbox holds only this student's code. :func:`clean_record` reads a record back in
the grader as untrusted data.

Like :mod:`grader.harness.encoding`, this module arrives in the sandbox as source text
(registered as ``__grader_recorders__``) and imports only the standard library; torch is
passed in or taken from ``sys.modules``. It never imports ``grader``.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Any

MAX_LAYERS = 300  # rows of the layer list; later module calls are only counted
MAX_NAMES = 200  # distinct torch function names; calls of further names are counted
MAX_TYPES = 100  # distinct module types (with their base classes)
MAX_BASES = 12  # base classes kept per module type
MAX_SHAPE_ITEMS = 8  # tensors of a tuple output whose shapes are kept
MAX_PARAM_MODULES = 5000  # modules of a model whose parameters are counted by type
MAX_TEXT = 200  # characters of a name

# Descriptors read straight from ``type`` so a metaclass property cannot fake a name.
_type_module = type.__dict__["__module__"]
_type_qualname = type.__dict__["__qualname__"]
_type_mro = type.__dict__["__mro__"]

# Attribute reads (``x.shape``, ``x.dtype``) reach the mode as ``….__get__``: noise.
_SKIPPED_SUFFIXES = (".__get__", ".__set__", ".__delete__")


def _load_torch() -> Any:
    """torch when it can be imported (a structure check is about torch code), else None."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    try:
        return importlib.import_module("torch")
    except Exception:
        return None


class Off:
    """The recorder of a call that asked for none: does nothing, records nothing."""

    def __enter__(self) -> Off:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def record(self) -> dict[str, Any] | None:
        """No record."""
        return None


def for_call(wanted: object, model: object = None) -> Recorder | Off:
    """A :class:`Recorder` when ``wanted`` is true (the call spec's ``record_structure``),
    else :class:`Off`; torch is imported for it if the student's code has not yet."""
    if wanted is not True:
        return Off()
    return Recorder(_load_torch(), model)


class Recorder:
    """Records modules run, torch functions called and parameters by type (see the module
    docstring). Use once: ``with rec: model(x)``, then :meth:`record`."""

    def __init__(self, torch: Any, model: object = None) -> None:
        self.torch = torch
        self.model = model
        self.layers: list[dict[str, Any]] = []
        self.layers_dropped = 0
        self.modules: dict[str, int] = {}
        self.types: dict[str, list[str]] = {}
        self.types_dropped = 0
        self.functions: dict[str, int] = {}
        self.functions_dropped = 0
        self.error: str | None = None
        self.busy = False  # our own torch calls (reading a shape) are not the student's
        self._labels: dict[type, str | None] = {}
        self._names: dict[object, str | None] = {}
        self._stack: list[tuple[object, int]] = []
        self._module_names: dict[int, str] = {}
        self._handles: list[Any] = []
        self._mode: Any = None

    # ------------------------------------------------------------------ install

    def __enter__(self) -> Recorder:
        torch = self.torch
        if torch is None:
            self.error = "torch is not installed, so nothing could be recorded"
            return self
        try:
            if self.model is not None:
                self.busy = True
                try:
                    for qname, mod in list(self.model.named_modules())[:MAX_PARAM_MODULES]:  # type: ignore[attr-defined]
                        self._module_names.setdefault(id(mod), str(qname)[:MAX_TEXT])
                finally:
                    self.busy = False
            hooks = torch.nn.modules.module
            self._handles.append(hooks.register_module_forward_pre_hook(self._pre_hook))
            self._handles.append(hooks.register_module_forward_hook(self._post_hook))
            self._mode = _mode_class(torch)(self)
            self._mode.__enter__()
        except Exception as exc:  # recording must never stop the student's code
            self.error = f"the recorder could not be installed: {type(exc).__name__}: {exc}"
            self._remove()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mode is not None:
            with contextlib.suppress(Exception):
                self._mode.__exit__(None, None, None)
            self._mode = None
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            with contextlib.suppress(Exception):
                handle.remove()
        self._handles = []

    # ------------------------------------------------------------------ modules

    def _pre_hook(self, module: object, args: object) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            label = self._label(type(module))
            if label is None:
                return
            self.modules[label] = self.modules.get(label, 0) + 1
            index = -1
            if len(self.layers) < MAX_LAYERS:
                index = len(self.layers)
                self.layers.append(
                    {
                        "type": label,
                        "name": self._module_names.get(id(module)),
                        "depth": len(self._stack),
                        "output_shape": None,
                    }
                )
            else:
                self.layers_dropped += 1
            self._stack.append((module, index))
        except Exception:
            pass
        finally:
            self.busy = False

    def _post_hook(self, module: object, args: object, output: object) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            # A forward that raised leaves its entry on the stack: unwind to this module.
            while self._stack:
                mod, index = self._stack.pop()
                if mod is module:
                    if index >= 0:
                        self.layers[index]["output_shape"] = _shape(self.torch, output)
                    break
        except Exception:
            pass
        finally:
            self.busy = False

    def _label(self, cls: type) -> str | None:
        """The type's name, its base classes recorded once; None past :data:`MAX_TYPES`."""
        if cls in self._labels:
            return self._labels[cls]
        if len(self._labels) >= MAX_TYPES:
            self.types_dropped += 1
            return None
        names = bases(self.torch, cls)
        label = names[0] if names else type_label(self.torch, cls)
        self._labels[cls] = label
        self.types.setdefault(label, names or [label])
        return label

    # ------------------------------------------------------------------ functions

    def count(self, func: object) -> None:
        """Count one call of the torch function ``func`` under its canonical name."""
        try:
            name = self._names[func]
        except (KeyError, TypeError):
            name = function_name(self.torch, func)
            try:
                if len(self._names) < 4 * MAX_NAMES:
                    self._names[func] = name
            except TypeError:  # an unhashable callable: named anew each time
                pass
        if name is None:
            return
        if name in self.functions:
            self.functions[name] += 1
        elif len(self.functions) < MAX_NAMES:
            self.functions[name] = 1
        else:
            self.functions_dropped += 1

    # ------------------------------------------------------------------ the record

    def record(self) -> dict[str, Any]:
        """The plain-data record: ``layers`` (``type``, ``name``, ``depth``,
        ``output_shape``), ``layers_dropped``, ``modules`` (calls by type), ``types``
        (each type with its base classes), ``types_dropped``, ``functions`` (calls by
        canonical name), ``functions_dropped``, ``params`` (a model's parameters by type,
        else None) and ``error`` (why recording failed, else None)."""
        params: dict[str, int] | None = None
        if self.model is not None and self.torch is not None:
            self.busy = True
            try:
                params = self._params()
            except Exception as exc:
                self.error = self.error or f"parameters could not be counted: {exc}"
            finally:
                self.busy = False
        return {
            "layers": self.layers,
            "layers_dropped": self.layers_dropped,
            "modules": dict(self.modules),
            "types": {k: list(v) for k, v in self.types.items()},
            "types_dropped": self.types_dropped,
            "functions": dict(self.functions),
            "functions_dropped": self.functions_dropped,
            "params": params,
            "error": self.error,
        }

    def _params(self) -> dict[str, int]:
        """Elements of the parameters inside modules of each type (sub-modules included,
        subclasses counted under their bases, each parameter once per type)."""
        by_type: dict[str, dict[int, int]] = {}
        modules = list(self.model.modules())[:MAX_PARAM_MODULES]  # type: ignore[attr-defined]
        for mod in modules:
            names = bases(self.torch, type(mod))
            if not names:
                continue
            own = {id(p): int(p.numel()) for p in mod.parameters()}
            for name in names:
                if name in by_type or len(by_type) < MAX_TYPES:
                    by_type.setdefault(name, {}).update(own)
        return {name: sum(sizes.values()) for name, sizes in by_type.items()}


_MODE_CLASSES: dict[int, type] = {}


def _mode_class(torch: Any) -> type:
    """The TorchFunctionMode class counting calls into a :class:`Recorder` (built once)."""
    key = id(torch)
    if key in _MODE_CLASSES:
        return _MODE_CLASSES[key]

    class StructureMode(torch.overrides.TorchFunctionMode):  # type: ignore[misc]
        def __init__(self, recorder: Recorder) -> None:
            super().__init__()
            self.recorder = recorder

        def __torch_function__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
        ) -> Any:
            recorder = self.recorder
            if not recorder.busy:
                # Never break the student's call; a try costs less than suppress here.
                try:  # noqa: SIM105
                    recorder.count(func)
                except Exception:
                    pass
            return func(*args, **kwargs) if kwargs else func(*args)

    _MODE_CLASSES[key] = StructureMode
    return StructureMode


def function_name(torch: Any, func: object) -> str | None:
    """The canonical name of a torch function as it reaches a TorchFunctionMode
    (``torch.nn.functional.softmax``, ``torch.softmax``, ``torch.Tensor.softmax``,
    ``torch.autograd.grad``), or None for attribute reads and private helpers."""
    name: str | None = None
    with contextlib.suppress(Exception):
        resolved = torch.overrides.resolve_name(func)
        name = resolved if type(resolved) is str else None
    if name is None:
        module = getattr(func, "__module__", None)
        short = getattr(func, "__name__", None)
        if type(module) is not str or type(short) is not str:
            return None
        name = f"{module}.{short}"
    if name.endswith(_SKIPPED_SUFFIXES):
        return None
    parts = name.split(".")
    if any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts):
        return None  # torch's private helpers (_set_grad_enabled …)
    return name[:MAX_TEXT]


def type_label(torch: Any, cls: type) -> str:
    """A class's name: ``torch.nn.MultiheadAttention`` for a class torch.nn exports,
    else ``module.qualname`` (``__main__.EncoderBlock``, ``layers.MyAttention``)."""
    try:
        module = _type_module.__get__(cls)
        qualname = _type_qualname.__get__(cls)
    except Exception:
        return "?"
    if type(module) is not str or type(qualname) is not str:
        return "?"
    if torch is not None and module.startswith("torch.nn.modules."):
        with contextlib.suppress(Exception):
            if vars(torch.nn).get(qualname) is cls:
                return f"torch.nn.{qualname}"[:MAX_TEXT]
    return f"{module}.{qualname}"[:MAX_TEXT]


def bases(torch: Any, cls: type) -> list[str]:
    """``cls`` and its base classes by :func:`type_label`, without ``torch.nn.Module`` and
    ``object`` (a subclass of ``nn.MultiheadAttention`` is a MultiheadAttention)."""
    try:
        mro = _type_mro.__get__(cls)
    except Exception:
        return []
    stop = (object, getattr(getattr(torch, "nn", None), "Module", object))
    names: list[str] = []
    for base in tuple.__iter__(mro):
        if base in stop:
            continue
        names.append(type_label(torch, base))
        if len(names) >= MAX_BASES:
            break
    return names


def _shape(torch: Any, value: object) -> Any:
    tp = type(value)
    if tp is torch.Tensor or tp is torch.nn.Parameter:
        return [int(s) for s in tuple.__iter__(value.shape)]  # type: ignore[attr-defined]
    if tp is tuple or tp is list:
        seq: Any = value
        items: list[object] = list(tuple.__iter__(seq) if tp is tuple else list.__iter__(seq))
        return [_shape(torch, v) for v in items[:MAX_SHAPE_ITEMS]]
    return None


# ---------------------------------------------------------------- in the grader


def clean_record(raw: object) -> dict[str, Any] | None:
    """A record read back in the grader, as untrusted data: the shape :meth:`Recorder.record`
    gives, every size bounded, anything else dropped; None when ``raw`` is no record."""
    if type(raw) is not dict:
        return None

    def count(value: object) -> int:
        return value if type(value) is int and value >= 0 else 0

    def text(value: object) -> str | None:
        return value[:MAX_TEXT] if type(value) is str else None

    def counts(value: object, limit: int) -> dict[str, int]:
        if type(value) is not dict:
            return {}
        out: dict[str, int] = {}
        for key, n in list(value.items())[:limit]:
            if type(key) is str and type(n) is int and n >= 0:
                out[key[:MAX_TEXT]] = n
        return out

    layers: list[dict[str, Any]] = []
    raw_layers = raw.get("layers")
    for row in raw_layers[:MAX_LAYERS] if type(raw_layers) is list else []:
        if type(row) is not dict or text(row.get("type")) is None:
            continue
        layers.append(
            {
                "type": text(row.get("type")),
                "name": text(row.get("name")),
                "depth": min(count(row.get("depth")), 64),
                "output_shape": _clean_shape(row.get("output_shape"), 0),
            }
        )
    types: dict[str, list[str]] = {}
    raw_types = raw.get("types")
    for key, names in list(raw_types.items())[:MAX_TYPES] if type(raw_types) is dict else []:
        if type(key) is str and type(names) is list:
            types[key[:MAX_TEXT]] = [n[:MAX_TEXT] for n in names[:MAX_BASES] if type(n) is str]
    params = raw.get("params")
    return {
        "layers": layers,
        "layers_dropped": count(raw.get("layers_dropped")),
        "modules": counts(raw.get("modules"), MAX_TYPES),
        "types": types,
        "types_dropped": count(raw.get("types_dropped")),
        "functions": counts(raw.get("functions"), MAX_NAMES),
        "functions_dropped": count(raw.get("functions_dropped")),
        "params": counts(params, MAX_TYPES * MAX_BASES) if type(params) is dict else None,
        "error": text(raw.get("error")),
    }


def _clean_shape(value: object, depth: int) -> Any:
    if type(value) is not list or depth > 2:
        return None
    if all(type(v) is int for v in value):
        return list(value[:16])  # one tensor's shape
    return [_clean_shape(v, depth + 1) for v in value[:MAX_SHAPE_ITEMS]]
