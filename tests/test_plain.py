"""The one plain-data codec (grader/plain.py): lossless, strict JSON, tags never confused
with data."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.plain import Unencodable, decode, encode
from tests.values import same


@dataclass(frozen=True)
class Point:
    x: float
    tags: tuple[str, ...] = ()


VALUES: list[Any] = [
    None,
    True,
    -3,
    2**70,
    0.1,
    -0.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    "text with ünïcode 王",
    1 + 2j,
    (1, (2.5, "x"), ()),
    [1, [float("nan")], {"a": (1,)}],
    {"plain": 1, "nested": {"k": [1, 2]}},
    {1: "int key", (2, 3): "tuple key", None: 0},
    {"__tuple__": [1, 2]},  # data that looks like a tag stays data
    {"__float__": "nan"},
    {"__array__": [1], "dtype": "int64", "shape": [1]},
    {"__dc__": "Point", "fields": {}},
    {"__tuple__": 1, "other": 2},  # not exactly a tag's keys: an ordinary object
    np.array([[1.0, np.nan], [np.inf, -np.inf]], dtype=np.float32),
    np.arange(6, dtype=np.int16).reshape(2, 3),
    np.array([True, False]),
    np.array(["a", "bc"]),
    np.zeros((0, 3)),
    np.array(np.nan),
    np.array(7, dtype=np.uint64),
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_round_trip_inline_is_exact_and_strict_json(value: Any) -> None:
    text = json.dumps(encode(value), allow_nan=False)  # no NaN tokens in the tree
    assert same(decode(json.loads(text)), value)


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_round_trip_with_arrays_out_of_line(value: Any) -> None:
    arrays: list[np.ndarray[Any, Any]] = []
    tree = json.loads(json.dumps(encode(value, arrays=arrays), allow_nan=False))
    assert same(decode(tree, arrays={f"a{i}": a for i, a in enumerate(arrays)}), value)


def test_numpy_scalars_keep_their_type_out_of_line_and_their_value_inline() -> None:
    values = [np.float64(0.5), np.int64(3), np.bool_(True), np.float32(np.nan)]
    arrays: list[np.ndarray[Any, Any]] = []
    stored = decode(
        encode(values, arrays=arrays), arrays={f"a{i}": a for i, a in enumerate(arrays)}
    )
    assert [type(v) for v in stored] == [np.float64, np.int64, np.bool_, np.float32]
    inline = decode(json.loads(json.dumps(encode(values), allow_nan=False)))
    assert inline[:3] == [0.5, 3, True] and [type(v) for v in inline] == [float, int, bool, float]
    assert math.isnan(inline[3])


def test_registered_dataclasses_only() -> None:
    point = Point(float("inf"), ("a",))
    assert decode(encode(point, types={"Point": Point}), types={"Point": Point}) == point
    with pytest.raises(Unencodable, match="dataclass Point"):
        encode(point)
    with pytest.raises(ValueError, match="unknown record"):
        decode(encode(point, types={"Point": Point}))


@pytest.mark.parametrize(
    "value",
    [object(), np.array([object()], dtype=object), b"bytes", np.datetime64("2024-01-01")],
    ids=["object", "object array", "bytes", "datetime"],
)
def test_what_json_cannot_hold_is_refused(value: Any) -> None:
    with pytest.raises(Unencodable):
        encode(value)


def test_foreign_trees_are_refused() -> None:
    with pytest.raises(ValueError):
        decode({"__float__": "NaNaN"})
    with pytest.raises(ValueError):  # an object array never comes out of a result file
        decode({"__array__": [1], "dtype": "object", "shape": [1]})
    with pytest.raises(ValueError):
        decode({"__nd__": 0})  # an out-of-line array without its arrays


def test_reference_values_are_cached_in_this_codec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grader.reference
    from grader.rubric import load_rubric

    monkeypatch.setenv("GRADER_CACHE", str(tmp_path))
    rubric = load_rubric("hw3")
    odd = {"array": np.array([[1.0, np.nan]]), "shape": (3, 4), "keys": {1: "one"}}
    values = {c.reference_key: odd for c in rubric.checks()}
    monkeypatch.setattr(grader.reference, "compute_values", lambda *a, **k: values)
    first = grader.reference.load_expected(rubric).values
    (entry,) = (tmp_path / "reference").iterdir()
    assert entry.name.endswith(".f2.json")  # never read by a grader of another format

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(grader.reference, "compute_values", refuse)
    again = grader.reference.load_expected(rubric).values
    assert same(dict(again), dict(first)) and same(dict(again), values)
