"""Reading students' plain-data answers as numbers, arrays and shapes.

Students write ``"7/4"``, ``"(498, 16)"``, ``"(,3776)"``, ``128 * (3776 + 1)`` as a string,
nested lists of tensors, tuples or lists. Everything here works on data already decoded
from JSON/``.npy`` in the grader's process; arithmetic strings are evaluated by walking
their syntax tree over a whitelist of operators, never with ``eval``.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class NotNumeric(ValueError):
    """An answer that cannot be read as numbers; the message says which part and why."""


_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_MAX_EXPR_CHARS = 200


def parse_number_text(text: str) -> float:
    """Read ``"7/4"``, ``"-3/4"``, ``"2.5"``, ``"(7*3+1)*16"`` as a float.

    Raises NotNumeric for anything else (names, calls, powers, long strings).
    """
    cleaned = text.strip().replace("×", "*").replace("−", "-").replace(",", "")
    if not cleaned or len(cleaned) > _MAX_EXPR_CHARS:
        raise NotNumeric(f"{text!r} is not a number")
    try:
        tree = ast.parse(cleaned, mode="eval")
    except SyntaxError as exc:
        raise NotNumeric(f"{text!r} is not a number") from exc
    return float(_arith(tree.body, text))


def _arith(node: ast.AST, text: str) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise NotNumeric(f"{text!r} is not a number")
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _arith(node.operand, text)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _arith(node.left, text), _arith(node.right, text)
        if isinstance(node.op, ast.Div) and right == 0:
            raise NotNumeric(f"{text!r} divides by zero")
        return float(_BINOPS[type(node.op)](left, right))
    raise NotNumeric(f"{text!r} is not a number or a simple fraction")


NUMBER_FORMS = 'an int, a float, a NumPy or torch scalar, or a fraction string such as "7/4"'
SHAPE_FORMS = (
    "a tuple or list of whole numbers (tf.TensorShape and torch.Size included) or a string "
    'such as "(498, 16)"'
)


def to_number(value: Any) -> float:
    """A scalar answer as a float: a number, a numeric string, or a size-1 array."""
    if isinstance(value, bool | np.bool_):
        raise NotNumeric(f"{value!r} is a boolean, not a number ({NUMBER_FORMS})")
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        return parse_number_text(value)
    if isinstance(value, np.ndarray | list | tuple):
        arr = to_array(value)
        if arr.size == 1:
            return float(arr.reshape(()))
        raise NotNumeric(f"expected a single number, got {arr.size} values of shape {arr.shape}")
    raise NotNumeric(f"expected a number ({NUMBER_FORMS}), got a {type(value).__name__}")


def to_array(value: Any) -> FloatArray:
    """Nested lists/arrays/numbers/fraction strings as a float64 array.

    Ragged nesting and non-numeric elements raise NotNumeric naming the position.
    """
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise NotNumeric(
                f"an array of {value.dtype} is not numeric; use an array of numbers or bools"
            )
        return value.astype(np.float64)
    if isinstance(value, list | tuple):
        if not value:
            return np.zeros((0,), dtype=np.float64)
        parts = [to_array(item) for item in value]
        shapes = {p.shape for p in parts}
        if len(shapes) != 1:
            raise NotNumeric("rows of different lengths: " + ", ".join(str(len(p)) for p in parts))
        return np.stack(parts)
    return np.asarray(to_number(value), dtype=np.float64)


_SHAPE_SPLIT = re.compile(r"[,x×*\s]+")


def to_shape(value: Any, *, leading_none: bool = False) -> tuple[int, ...]:
    """A shape answer: a tuple/list of ints, an int array, or a string like ``"(498, 16)"``.

    ``"(,3776)"`` reads as ``(3776,)``: the empty slot is how Keras users write a
    flattened vector once the batch dimension is left out. A single whole number (an int
    or a 0-d array, such as ``torch.tensor(3776)``) is a one-dimensional shape.

    ``leading_none``: the answer is a shape Keras prints (a ``model.summary()`` row, an
    output shape), so a leading ``None`` - the batch axis, as Keras writes it, a
    ``tf.TensorShape``'s unknown first dimension or the text ``"(None, 498, 16)"`` - is
    dropped. Without it (an argument value such as an LSTM's ``input_shape``) a ``None``
    makes the answer unreadable as a shape.
    """
    if leading_none:
        value = _drop_leading_none(value)
    elif _has_none(value):
        raise NotNumeric(
            f"{value!r} holds None: this answer is a shape of whole numbers without the "
            "batch axis; write it as " + SHAPE_FORMS
        )
    if isinstance(value, str):
        inner = value.strip().strip("()[]").strip()
        parts = [p for p in _SHAPE_SPLIT.split(inner) if p]
        if not parts:
            raise NotNumeric(f"{value!r} is not a shape; write it as {SHAPE_FORMS}")
        dims = []
        for part in parts:
            if not re.fullmatch(r"\d+", part):
                raise NotNumeric(
                    f"{value!r} is not a shape of whole numbers ({part!r}); write it as "
                    f"{SHAPE_FORMS}"
                )
            dims.append(int(part))
        return tuple(dims)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    arr = to_array(value)
    if (
        arr.ndim > 1
        or (isinstance(value, np.ndarray) and value.dtype.kind == "b")
        or not np.all(np.isfinite(arr))
        or not np.all(arr == np.round(arr))
    ):
        raise NotNumeric(f"{value!r} is not a shape; write it as {SHAPE_FORMS}")
    return tuple(int(v) for v in arr.reshape(-1))


_LEADING_NONE = re.compile(r"^\s*[(\[]?\s*None\s*,", re.IGNORECASE)


def _has_none(value: Any) -> bool:
    if isinstance(value, str):
        return re.search(r"\bnone\b", value, re.IGNORECASE) is not None
    return isinstance(value, list | tuple) and any(v is None for v in value)


def _drop_leading_none(value: Any) -> Any:
    """``value`` without a leading ``None`` dimension (a list's or a string's)."""
    if isinstance(value, list | tuple) and value and value[0] is None:
        return list(value[1:])
    if isinstance(value, str):
        match = _LEADING_NONE.match(value)
        if match:
            return value[: match.end() - len(match.group(0))] + value[match.end() :]
    return value


def to_count(value: Any) -> int | None:
    """A whole-number answer (a parameter count), or None when it is not one."""
    try:
        number = to_number(value)
    except NotNumeric:
        return None
    if not math.isfinite(number) or number != round(number):
        return None
    return round(number)


def to_plain(value: Any) -> Any:
    """Data for the results JSON: arrays to lists, non-finite floats to strings."""
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value
