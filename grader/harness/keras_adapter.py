"""The Keras adapter of the model probe: a Keras model probed into the same plain data
as a ``torch.nn.Module`` (see :func:`grader.harness.kernel._probe_model`).

Like :mod:`grader.harness.encoding` and :mod:`grader.harness.recorders`, this module
arrives in the sandbox as source text (compiled by the kernel harness only once the
student's code has imported Keras or Keras Tuner), imports only
the standard library and NumPy, and never imports ``grader``, ``keras`` or
``tensorflow``: a model can only be a Keras model when the student's code imported Keras
(Keras 3 on any backend, or ``tf.keras``, which is Keras 3 in TensorFlow >= 2.16; legacy
``tf_keras`` when it is installed and imported), so the package is read from
``sys.modules``.

What the probe observes, during one call ``model(x, training=False)`` (inference mode):

* **Layers that ran**: ``keras.layers.Layer.__call__`` is wrapped for the duration of the
  call only, so every layer called - through a functional graph, a ``Sequential`` or a
  subclassed model's ``call`` - is recorded in call order with its type
  (``keras.layers.Conv2D`` for a class Keras exports, else ``module.qualname``), its
  name, its nesting depth and its output shape *as Keras computes it* (channels last for
  a channels-last model). Leaf layers (those that called no other layer) form the probe's
  ``modules`` list, as leaf torch modules do.
* **Concatenations**: calls of ``keras.ops.concatenate`` (which the ``Concatenate``
  layer uses) and ``tf.concat``, with the number of tensors, their shapes and the axis.
  The axis is reported in the handout's layout: for a channels-last model the model's
  own channel axis (the last) reads as 1, "concatenated on the channel axis".
* **Functions**: the names of those concatenation calls (``keras.ops.concatenate``,
  ``tensorflow.concat``); other Keras or TensorFlow operations are not observed.
* **Parameters**: trainable = the elements of ``model.trainable_weights``; total = the
  elements of ``model.weights``, so (Keras's own definition) the non-trainable count
  includes BatchNormalization's moving mean and variance, which torch keeps as buffers
  and does not count. ``param_count`` grades the trainable count, the same in both.

**Layout.** The handouts describe inputs channels first (``[batch, channels, ...]``). A
model whose declared input shape (``model.inputs[0].shape``) matches the channels-last
arrangement and not the channels-first one is given the batch channels last; a model
with no declared input follows ``keras.config.image_data_format()``. The output of such a
model is reported moved back to channels first (its last axis to axis 1) when it has
three or more axes, so it compares with the PyTorch reference's.
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Any

import numpy as np

MAX_LAYERS = 300
MAX_TYPES = 100
MAX_BASES = 12
MAX_CAT_RECORDS = 500
MAX_TEXT = 200

_type_module = type.__dict__["__module__"]
_type_qualname = type.__dict__["__qualname__"]
_type_mro = type.__dict__["__mro__"]

# The Keras packages a model may come from, by import name: Keras 3 (``tf.keras`` is the
# same package) and, only if the student imported it, legacy Keras 2.
_PACKAGES = ("keras", "tf_keras")


def keras_of(obj: object) -> Any:
    """The Keras package whose ``Layer`` ``obj`` is an instance of, else None.

    Checked before torch: a Keras 3 model on the torch backend is also a
    ``torch.nn.Module``, and the Keras adapter wins for any Keras model."""
    tp = type(obj)
    for name in _PACKAGES:
        keras = sys.modules.get(name)
        layers = getattr(keras, "layers", None) if keras is not None else None
        base = getattr(layers, "Layer", None)
        if isinstance(base, type) and issubclass(tp, base):
            return keras
    return None


def probe(keras: Any, model: Any, spec: dict[str, Any], describe: Any, trim: Any) -> dict[str, Any]:
    """Run ``model`` once on the grader-made batch of ``spec`` and return the probe's
    plain data (the keys of the torch probe, plus ``framework``, ``channels_last`` and
    ``non_trainable_params``). ``describe``/``trim`` format an exception and its
    traceback (the encoding module's)."""
    result: dict[str, Any] = {
        "framework": "keras",
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
        "non_trainable_params": None,
        "cat_calls": [],
        "modules": [],
        "structure": None,
        "channels_last": False,
    }
    shape = [int(s) for s in spec.get("input_shape", ())]
    recorder = KerasRecorder(keras, model)
    try:
        channels_last = _channels_last(keras, model, shape)
        result["channels_last"] = channels_last
        recorder.channels_last = channels_last
        x = _probe_input(spec, shape)
        if channels_last:
            x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        xt = keras.ops.convert_to_tensor(x)
        with recorder:
            out = model(xt, training=False)
        result["ran"] = True
        result.update(_describe_output(keras, out, channels_last))
    except (Exception, SystemExit) as exc:
        result["error"] = describe(exc)
        result["traceback"] = trim(exc)
    result["modules"] = recorder.leaf_rows()
    result["cat_calls"] = recorder.cat_calls
    result["structure"] = recorder.record()
    with contextlib.suppress(Exception):
        trainable = sum(_size(w) for w in model.trainable_weights)
        total = sum(_size(w) for w in model.weights)
        result["trainable_params"] = trainable
        result["total_params"] = total
        result["non_trainable_params"] = total - trainable
    return result


def _size(weight: Any) -> int:
    return int(math.prod(int(d) for d in tuple(weight.shape)))


def _declared_input(model: Any) -> list[Any] | None:
    """The model's declared input shape without the batch axis, or None."""
    try:
        inputs = model.inputs
        if not inputs:
            return None
        dims = tuple(inputs[0].shape)
    except Exception:
        return None
    return [None if d is None else int(d) for d in dims[1:]]


def _matches(declared: list[Any], dims: list[int]) -> bool:
    return len(declared) == len(dims) and all(
        d is None or d == g for d, g in zip(declared, dims, strict=True)
    )


def _channels_last(keras: Any, model: Any, shape: list[int]) -> bool:
    """Whether the batch (channels first in the handout) is given channels last."""
    if len(shape) < 3:
        return False  # no channel axis: (batch, features)
    first = shape[1:]
    last = [*shape[2:], shape[1]]
    declared = _declared_input(model)
    if declared is not None:
        if _matches(declared, first):
            return False
        if _matches(declared, last):
            return True
    try:
        return bool(keras.config.image_data_format() == "channels_last")
    except Exception:
        return True


def _probe_input(spec: dict[str, Any], shape: list[int]) -> np.ndarray[Any, Any]:
    low = float(spec.get("low", 0.0))
    high = float(spec.get("high", 1.0))
    dtype = np.dtype(str(spec.get("dtype", "float32")))
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    if dtype.kind == "f":
        return (rng.random(shape) * (high - low) + low).astype(dtype)
    return rng.integers(math.ceil(low), math.floor(high) + 1, shape).astype(dtype)


def _as_array(keras: Any, value: Any) -> np.ndarray[Any, Any] | None:
    try:
        return np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:
        return None


def _shape_of(value: Any, depth: int = 0) -> Any:
    """A tensor's shape as ints; a list/tuple of them as a list of shapes; else None."""
    if type(value) in (list, tuple) and depth < 2:
        return [_shape_of(v, depth + 1) for v in list(value)[:16]]
    try:
        dims = tuple(value.shape)
    except Exception:
        return None
    if any(d is None for d in dims):
        return None
    return [int(d) for d in dims]


def _describe_output(keras: Any, out: Any, channels_last: bool) -> dict[str, Any]:
    tp = type(out)
    info: dict[str, Any] = {
        "output_type": f"{_type_module.__get__(tp)}.{_type_qualname.__get__(tp)}"
    }
    if tp in (list, tuple, dict):
        info["output_shape"] = _shape_of(list(out.values()) if tp is dict else out)
        return info
    arr = _as_array(keras, out)
    if arr is None:
        return info
    if channels_last and arr.ndim >= 3:
        arr = np.moveaxis(arr, -1, 1)  # the handout's layout, as the reference gives it
    info["output_shape"] = [int(s) for s in arr.shape]
    info["output_dtype"] = str(arr.dtype)
    if arr.size and arr.dtype.kind in "biuf":
        v = arr.astype(np.float64)
        info["output_min"] = float(v.min())
        info["output_max"] = float(v.max())
        info["output_finite"] = bool(np.isfinite(v).all())
    elif arr.size == 0:
        info["output_finite"] = True
    return info


def type_label(keras: Any, cls: type) -> str:
    """``keras.layers.Conv2D`` for a class Keras exports in ``keras.layers``, else
    ``module.qualname`` (``__main__.LocallyConnected1D``)."""
    try:
        module = _type_module.__get__(cls)
        qualname = _type_qualname.__get__(cls)
    except Exception:
        return "?"
    if type(module) is not str or type(qualname) is not str:
        return "?"
    with contextlib.suppress(Exception):
        if module.startswith("keras.") and vars(keras.layers).get(qualname) is cls:
            return f"keras.layers.{qualname}"[:MAX_TEXT]
    return f"{module}.{qualname}"[:MAX_TEXT]


class KerasRecorder:
    """Layers called and concatenations made during one forward pass (see the module
    docstring); installed with ``with``, read with :meth:`record`."""

    def __init__(self, keras: Any, model: Any) -> None:
        self.keras = keras
        self.model = model
        self.channels_last = False
        self.layers: list[dict[str, Any]] = []
        self.leaf: list[bool] = []
        self.layers_dropped = 0
        self.modules: dict[str, int] = {}
        self.types: dict[str, list[str]] = {}
        self.functions: dict[str, int] = {}
        self.cat_calls: list[dict[str, Any]] = []
        self.error: str | None = None
        self._stack: list[int] = []
        self._in_cat = False
        self._patched: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> KerasRecorder:
        try:
            layer_cls = self.keras.layers.Layer
            self._patch(layer_cls, "__call__", self._wrap_call(vars(layer_cls)["__call__"]))
            for owner_name in ("keras.src.ops", "keras.src.ops.numpy", "keras.ops"):
                owner = sys.modules.get(owner_name)
                if owner is not None and hasattr(owner, "concatenate"):
                    self._patch(
                        owner,
                        "concatenate",
                        self._wrap_cat(owner.concatenate, "keras.ops.concatenate"),
                    )
            tf = sys.modules.get("tensorflow")
            if tf is not None and hasattr(tf, "concat"):
                self._patch(tf, "concat", self._wrap_cat(tf.concat, "tensorflow.concat"))
        except Exception as exc:  # recording must never stop the student's model
            self.error = f"the recorder could not be installed: {type(exc).__name__}: {exc}"
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original in reversed(self._patched):
            with contextlib.suppress(Exception):
                setattr(owner, attr, original)
        self._patched = []

    def _patch(self, owner: Any, attr: str, wrapper: Any) -> None:
        original = getattr(owner, attr) if not isinstance(owner, type) else vars(owner)[attr]
        setattr(owner, attr, wrapper)
        self._patched.append((owner, attr, original))

    def _wrap_call(self, original: Any) -> Any:
        rec = self

        def __call__(layer: Any, *args: Any, **kwargs: Any) -> Any:
            if layer is rec.model or rec._symbolic(args):
                # an unbuilt Sequential traces its graph on symbolic tensors first: only
                # the calls on the probe's real batch count as layers that ran
                return original(layer, *args, **kwargs)
            index = rec._enter(layer)
            try:
                out = original(layer, *args, **kwargs)
            finally:
                rec._leave(index)
            if index >= 0:
                with contextlib.suppress(Exception):
                    rec.layers[index]["output_shape"] = _shape_of(out)
            return out

        return __call__

    def _symbolic(self, args: tuple[Any, ...]) -> bool:
        """A call tracing shapes, not running on the probe's batch: on KerasTensors, or
        inside Keras's symbolic scope (a subclassed model built by a traced call)."""
        scope = sys.modules.get("keras.src.backend.common.symbolic_scope")
        with contextlib.suppress(Exception):
            if scope is not None and scope.in_symbolic_scope():
                return True
        symbolic = getattr(self.keras, "KerasTensor", None)
        if symbolic is None or not args:
            return False
        first = args[0]
        if type(first) in (list, tuple) and first:
            first = first[0]
        return isinstance(first, symbolic)

    def _enter(self, layer: Any) -> int:
        try:
            if self._stack:
                self.leaf[self._stack[-1]] = False
            label = self._label(type(layer))
            self.modules[label] = self.modules.get(label, 0) + 1
            if len(self.layers) >= MAX_LAYERS:
                self.layers_dropped += 1
                self._stack.append(-1)
                return -1
            name = getattr(layer, "name", None)
            self.layers.append(
                {
                    "type": label,
                    "name": name[:MAX_TEXT] if type(name) is str else None,
                    "depth": len(self._stack),
                    "output_shape": None,
                }
            )
            self.leaf.append(True)
            self._stack.append(len(self.layers) - 1)
            return len(self.layers) - 1
        except Exception:
            self._stack.append(-1)
            return -1

    def _leave(self, index: int) -> None:
        while self._stack:
            if self._stack.pop() == index:
                break

    def _label(self, cls: type) -> str:
        label = type_label(self.keras, cls)
        if label not in self.types and len(self.types) < MAX_TYPES:
            names: list[str] = []
            with contextlib.suppress(Exception):
                for base in tuple.__iter__(_type_mro.__get__(cls)):
                    if base is object or _type_module.__get__(base).startswith(
                        (
                            "keras.src.backend",
                            "keras.src.ops",
                            "keras.src.saving",
                            "torch.",
                            "tensorflow.",
                        )
                    ):
                        continue
                    names.append(type_label(self.keras, base))
                    if len(names) >= MAX_BASES:
                        break
            self.types[label] = names or [label]
        return label

    def _wrap_cat(self, original: Any, fname: str) -> Any:
        rec = self

        def concatenate(*args: Any, **kwargs: Any) -> Any:
            if rec._in_cat or rec._symbolic(args):
                return original(*args, **kwargs)
            rec._in_cat = True
            try:
                with contextlib.suppress(Exception):
                    rec.functions[fname] = rec.functions.get(fname, 0) + 1
                    if len(rec.cat_calls) < MAX_CAT_RECORDS:
                        rec.cat_calls.append(rec._cat_record(args, kwargs))
                return original(*args, **kwargs)
            finally:
                rec._in_cat = False

        return concatenate

    def _cat_record(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        tensors = list(args[0] if args else kwargs.get("xs", kwargs.get("values", ())))
        axis = args[1] if len(args) > 1 else kwargs.get("axis", 0)
        shapes = [s for s in (_shape_of(t) for t in tensors[:64])]
        rank = len(shapes[0]) if shapes and isinstance(shapes[0], list) else 0
        dim: Any = str(axis)
        if type(axis) is int:
            dim = axis + rank if axis < 0 and rank else axis
            if self.channels_last and rank >= 3 and dim >= 1:
                # the handout's layout: the model's own channel axis (last) is axis 1
                dim = 1 if dim == rank - 1 else dim + 1
        return {"n_inputs": len(tensors), "dim": dim, "axis": axis, "shapes": shapes}

    def leaf_rows(self) -> list[dict[str, Any]]:
        """The leaf layers that ran, as the torch probe's ``modules`` rows."""
        return [
            {
                "name": row["name"],
                "type": row["type"].rsplit(".", 1)[-1],
                "output_shape": row["output_shape"],
            }
            for row, leaf in zip(self.layers, self.leaf, strict=True)
            if leaf
        ]

    def record(self) -> dict[str, Any]:
        """The structure record, in :meth:`grader.harness.recorders.Recorder.record`'s
        shape (``functions`` holds only the concatenation calls observed)."""
        params: dict[str, int] | None = None
        with contextlib.suppress(Exception):
            params = {}
            seen: dict[str, dict[int, int]] = {}
            for layer in self.model._flatten_layers(include_self=False, recursive=True):
                label = self._label(type(layer))
                for name in self.types.get(label, [label]):
                    sizes = seen.setdefault(name, {})
                    for w in layer.weights:
                        sizes[id(w)] = _size(w)
            params = {name: sum(sizes.values()) for name, sizes in seen.items()}
        return {
            "layers": self.layers,
            "layers_dropped": self.layers_dropped,
            "modules": dict(self.modules),
            "types": {k: list(v) for k, v in self.types.items()},
            "types_dropped": 0,
            "functions": dict(self.functions),
            "functions_dropped": 0,
            "params": params,
            "error": self.error,
        }


# ----------------------------------------------------------------------------- Keras Tuner

MAX_TRIALS = 10_000
TUNER_KEY = "keras_tuner"


def _tuner_classes() -> tuple[Any, Any, Any] | None:
    """``(BaseTuner, Trial, HyperParameters)`` when the student imported Keras Tuner."""
    kt = sys.modules.get("keras_tuner")
    if kt is None:
        return None
    base = getattr(sys.modules.get("keras_tuner.src.engine.base_tuner"), "BaseTuner", None)
    trial = getattr(sys.modules.get("keras_tuner.src.engine.trial"), "Trial", None)
    hps = getattr(kt, "HyperParameters", None)
    return base, trial, hps


def _is(tp: type, cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(tp, cls)


def plain_tuner(obj: Any) -> Any:
    """A Keras Tuner object as plain trials (the ``search`` check's form), else ``obj``.

    * a tuner (any ``BaseTuner``: ``RandomSearch``, a subclass whose ``run_trial``
      calls the handout's trainer …) → ``{"keras_tuner": {"objective", "direction",
      "trials", "best"}}``, its oracle's trials in order, each ``{**hyper-parameter
      values, <objective name>: score}`` (``None`` for a trial without a score), and
      ``best`` the oracle's best trial in that form;
    * a ``Trial`` (``tuner.oracle.get_best_trials(1)[0]``) → that one trial dict;
    * a ``HyperParameters`` (``tuner.get_best_hyperparameters()[0]``) →
      ``{"keras_tuner": {"hyperparameters": values}}``: it holds no score, so the check
      takes the score of the trial with those values.
    """
    classes = _tuner_classes()
    if classes is None:
        return obj
    base, trial_cls, hps_cls = classes
    tp = type(obj)
    if _is(tp, base):
        oracle = obj.oracle
        objective = oracle.objective
        name = str(getattr(objective, "name", "score"))
        trials = [_trial_dict(t, name) for t in list(oracle.trials.values())[:MAX_TRIALS]]
        best_trials = oracle.get_best_trials(1)
        return {
            TUNER_KEY: {
                "objective": name,
                "direction": str(getattr(objective, "direction", "max")),
                "trials": trials,
                "best": _trial_dict(best_trials[0], name) if best_trials else None,
            }
        }
    if _is(tp, trial_cls):
        return _trial_dict(obj, _objective_name(obj))
    if _is(tp, hps_cls):
        return {TUNER_KEY: {"hyperparameters": _values(obj)}}
    return obj


def _values(hps: Any) -> dict[str, Any]:
    return {str(k): v for k, v in dict(hps.values).items()}


def _trial_dict(trial: Any, objective: str) -> dict[str, Any]:
    out = _values(trial.hyperparameters)
    score = trial.score
    out[objective] = None if score is None else float(score)
    return out


def _objective_name(trial: Any) -> str:
    """A lone trial's objective: the one metric its tracker follows, else ``score``."""
    with contextlib.suppress(Exception):
        names = list(trial.metrics.metrics)
        if len(names) == 1:
            return str(names[0])
    return "score"
