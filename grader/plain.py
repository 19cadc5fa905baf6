"""The grader's one plain-data codec: Python and NumPy values as JSON trees, losslessly.

Used for every value the grader's own process keeps as JSON: the answers, expected
values and details in ``results/<student>.json`` (:mod:`grader.results`), the cached
executions (:mod:`grader.cache`, and the replies of cluster workers), and the cached
reference values (:mod:`grader.reference`). :func:`decode` of :func:`encode` gives back
an equal value of the same types. The trees are strict JSON (no ``NaN`` tokens).

What JSON cannot say is written as a tagged object; any other object is a dict with
string keys, as it is::

    {"__float__": "nan" | "inf" | "-inf"}          a non-finite float
    {"__tuple__": [...]}                           a tuple
    {"__complex__": [real, imag]}                  a complex number
    {"__array__": nested lists, "dtype": "float32", "shape": [2, 3]}
                                                   a NumPy array kept inline (a
                                                   non-finite element as "nan", …)
    {"__nd__": i} / {"__np__": i}                  an array / a NumPy scalar kept out of
                                                   line, ``arrays[i]`` (the cache's .npz)
    {"__map__": [[key, value], ...]}               a dict whose keys are not all strings,
                                                   or that would read as a tag
    {"__dc__": "Name", "fields": {...}}            a dataclass of the caller's ``types``

Inline (no ``arrays`` list given), a NumPy scalar is written as the Python number it
equals (``np.float32(0.5)`` → ``0.5``): its value is kept exactly, its dtype is not.

Two codecs stay apart on purpose: :mod:`grader.harness.encoding` runs inside the
sandbox (standard library and NumPy only) and :mod:`grader.answers` decodes what it
wrote with the size, depth and file-name checks untrusted input needs. They spell
non-finite floats the same way (``{"__float__": "nan"}``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

NONFINITE: dict[str, float] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

#: Array kinds kept inline (lists of JSON numbers, booleans or strings) and out of line
#: (``np.savez`` without pickles: no object, void or datetime arrays).
INLINE_KINDS = frozenset("biufU")
STORED_KINDS = frozenset("biufcUS")

#: The key sets that make an object a tag; a dict with exactly one of them is a __map__.
_TAGS: tuple[frozenset[str], ...] = tuple(
    frozenset(keys)
    for keys in (
        ("__float__",),
        ("__tuple__",),
        ("__complex__",),
        ("__array__", "dtype", "shape"),
        ("__nd__",),
        ("__np__",),
        ("__map__",),
        ("__dc__", "fields"),
    )
)


class Unencodable(TypeError):
    """A value this codec cannot represent (a torch tensor, an object array, …)."""


def _float_name(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _inline_array(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    if array.dtype.kind not in INLINE_KINDS or array.dtype.fields is not None:
        raise Unencodable(f"array of dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        items = array.astype(object)
        items[np.isnan(array)] = "nan"
        items[np.isposinf(array)] = "inf"
        items[np.isneginf(array)] = "-inf"
        nested = items.tolist()
    else:
        nested = array.tolist()
    return {"__array__": nested, "dtype": str(array.dtype), "shape": list(array.shape)}


def encode(
    value: Any,
    *,
    arrays: list[np.ndarray[Any, Any]] | None = None,
    types: Mapping[str, type[Any]] | None = None,
) -> Any:
    """The JSON tree of ``value`` (see the module docstring).

    With ``arrays``, NumPy arrays and scalars are appended to it and referenced by
    index (exact dtypes, no size cost in the JSON); without, arrays are written inline.
    ``types`` names the dataclasses that may be encoded (by class name). Raises
    :class:`Unencodable` for anything else.
    """
    registry = types or {}

    def enc(x: Any) -> Any:
        # NumPy scalars first: np.float64 is also a float, np.bool_ is not a bool.
        if isinstance(x, np.generic):
            if arrays is not None:
                if np.asarray(x).dtype.kind not in STORED_KINDS:
                    raise Unencodable(f"NumPy scalar of dtype {np.asarray(x).dtype}")
                arrays.append(np.asarray(x))
                return {"__np__": len(arrays) - 1}
            item = x.item()
            if not isinstance(item, bool | int | float | complex | str):
                raise Unencodable(f"NumPy scalar of dtype {np.asarray(x).dtype}")
            return enc(item)
        if x is None or isinstance(x, bool | int | str):
            return x
        if isinstance(x, float):
            return float(x) if math.isfinite(x) else {"__float__": _float_name(x)}
        if isinstance(x, complex):
            return {"__complex__": [enc(x.real), enc(x.imag)]}
        if isinstance(x, np.ndarray):
            if arrays is None:
                return _inline_array(x)
            if x.dtype.kind not in STORED_KINDS or x.dtype.fields is not None:
                raise Unencodable(f"array of dtype {x.dtype}")
            arrays.append(x)
            return {"__nd__": len(arrays) - 1}
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            name = type(x).__name__
            if registry.get(name) is not type(x):
                raise Unencodable(f"dataclass {name}")
            fields = {f.name: enc(getattr(x, f.name)) for f in dataclasses.fields(x)}
            return {"__dc__": name, "fields": fields}
        if isinstance(x, tuple):
            return {"__tuple__": [enc(v) for v in x]}
        if isinstance(x, list):
            return [enc(v) for v in x]
        if isinstance(x, Mapping):
            keys = list(x)
            if all(type(k) is str for k in keys) and frozenset(keys) not in _TAGS:
                return {k: enc(v) for k, v in x.items()}
            return {"__map__": [[enc(k), enc(v)] for k, v in x.items()]}
        raise Unencodable(f"type {type(x).__name__}")

    return enc(value)


def decode(
    tree: Any,
    *,
    arrays: Mapping[str, np.ndarray[Any, Any]] | None = None,
    types: Mapping[str, type[Any]] | None = None,
) -> Any:
    """The value :func:`encode` wrote as ``tree``; out-of-line arrays are looked up in
    ``arrays`` by ``"a<i>"`` (the names of the cache's ``.npz``). Raises ``ValueError``
    (or ``KeyError``) for a tree this codec did not write."""
    registry = types or {}

    def dec(node: Any) -> Any:
        if isinstance(node, list):
            return [dec(v) for v in node]
        if not isinstance(node, dict):
            return node
        keys = frozenset(node)
        if keys not in _TAGS:
            return {k: dec(v) for k, v in node.items()}
        if "__float__" in keys:
            name = node["__float__"]
            if name not in NONFINITE:
                raise ValueError(f"bad non-finite float {name!r}")
            return NONFINITE[name]
        if "__tuple__" in keys:
            return tuple(dec(v) for v in node["__tuple__"])
        if "__complex__" in keys:
            real, imag = (dec(v) for v in node["__complex__"])
            return complex(real, imag)
        if "__array__" in keys:
            dtype = np.dtype(node["dtype"])
            if dtype.kind not in INLINE_KINDS or dtype.fields is not None:
                raise ValueError(f"array of dtype {dtype} in a plain-data tree")
            return np.asarray(node["__array__"], dtype=dtype).reshape(node["shape"])
        if "__nd__" in keys or "__np__" in keys:
            if arrays is None:
                raise ValueError("an out-of-line array without its arrays")
            if "__nd__" in keys:
                return arrays[f"a{node['__nd__']}"]
            return arrays[f"a{node['__np__']}"][()]
        if "__map__" in keys:
            return {dec(k): dec(v) for k, v in node["__map__"]}
        cls = registry.get(node["__dc__"])
        if cls is None:
            raise ValueError(f"unknown record {node['__dc__']!r}")
        return cls(**{k: dec(v) for k, v in node["fields"].items()})

    return dec(tree)
