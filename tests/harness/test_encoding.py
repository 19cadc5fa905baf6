"""The shared in-sandbox encoder: which student values become plain data, and how.

These call :class:`grader.harness.encoding.Encoder` directly; the round trip through the
outbox files is in ``test_kernel.py``. Expected values are written by hand.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from grader.harness.encoding import Encoder, Reject, sequence_items


def encode(x: object) -> tuple[object, list[np.ndarray[Any, Any]]]:
    """The JSON tree of ``x`` and the arrays it would save, in order."""
    enc = Encoder("x", 64 * 2**20, "x.0")
    tree = enc.encode(x, "", 0)
    return tree, [arr for _, arr in enc.arrays]


def refused(x: object) -> Reject:
    with pytest.raises(Reject) as info:
        encode(x)
    return info.value


def only_array(x: object) -> np.ndarray[Any, Any]:
    tree, arrays = encode(x)
    assert tree == {"__ndarray__": "x.0.0.npy"} and len(arrays) == 1
    return arrays[0]


# ------------------------------------------------------- tuple, list and dict subclasses


class Touched(Exception):
    """Raised by any method of a student subclass: the encoder must call none of them."""


class SneakyTuple(tuple):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        raise Touched("__iter__")

    def __len__(self) -> int:
        raise Touched("__len__")

    def __getitem__(self, i: Any) -> Any:
        raise Touched("__getitem__")

    def __eq__(self, other: object) -> bool:
        raise Touched("__eq__")

    __hash__ = tuple.__hash__


class SneakyList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        raise Touched("__iter__")

    def __len__(self) -> int:
        raise Touched("__len__")

    def __getitem__(self, i: Any) -> Any:
        raise Touched("__getitem__")


class SneakyDict(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise Touched("items")

    def keys(self) -> Any:
        raise Touched("keys")

    def __iter__(self) -> Any:
        raise Touched("__iter__")

    def __len__(self) -> int:
        raise Touched("__len__")

    def __getitem__(self, k: Any) -> Any:
        raise Touched("__getitem__")


class ClaimsToBeATuple:
    """Not a tuple, but ``isinstance(x, tuple)`` would say so (and run this property)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise Touched("__class__")


Row = collections.namedtuple("Row", "layer shape params")


def test_torch_size_is_a_list_of_ints() -> None:
    assert encode(torch.zeros(2, 498, 16).shape[1:]) == ([498, 16], [])
    assert encode(torch.Size([])) == ([], [])


def test_named_tuple_rows_of_a_shape_table() -> None:
    table = [Row("Input", torch.Size([500, 7]), 0), Row("Conv1D", (498, 16), 352)]
    assert encode(table) == ([["Input", [500, 7], 0], ["Conv1D", [498, 16], 352]], [])


def test_subclasses_are_read_without_calling_their_methods() -> None:
    assert encode(SneakyTuple((1, (2, "a")))) == ([1, [2, "a"]], [])
    assert encode(SneakyList([1.5, SneakyTuple((3,))])) == ([1.5, [3]], [])
    assert encode(SneakyDict(w=SneakyList([1]), b=2)) == ({"w": [1], "b": 2}, [])
    assert sequence_items(SneakyTuple((4, 5))) == [4, 5]
    assert sequence_items(ClaimsToBeATuple()) is None


def test_ordered_and_default_dicts() -> None:
    od = collections.OrderedDict([("layer_1_bias", 0.5), ("layer_1_weights", [1, 2])])
    assert encode(od) == ({"layer_1_bias": 0.5, "layer_1_weights": [1, 2]}, [])
    dd: collections.defaultdict[str, int] = collections.defaultdict(int, a=3)
    assert encode(dd) == ({"a": 3}, [])
    assert "a float key" in refused(collections.OrderedDict([(1.5, 0)])).message
    bad = refused(SneakyDict({1: "a"}))
    assert bad.message == (
        "x is a dict with a int key; the grader reads dicts whose keys are strings"
    )


def test_an_object_posing_as_a_tuple_is_refused_untouched() -> None:
    rej = refused(ClaimsToBeATuple())
    assert rej.status == "unsupported"
    assert "test_encoding.ClaimsToBeATuple, which the grader cannot read" in rej.message


# ------------------------------------------------------------------------ NumPy values


@pytest.mark.parametrize(
    "scalar_type",
    [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64],
)
def test_numpy_integer_scalars(scalar_type: type[Any]) -> None:
    tree, _ = encode(scalar_type(7))
    assert tree == 7 and type(tree) is int


@pytest.mark.parametrize("scalar_type", [np.float16, np.float32, np.float64, np.longdouble])
def test_numpy_float_scalars(scalar_type: type[Any]) -> None:
    tree, _ = encode(scalar_type(0.25))
    assert tree == 0.25 and type(tree) is float
    assert encode(scalar_type("nan"))[0] == {"__float__": "nan"}


def test_numpy_bools_and_nested_lists_of_scalars() -> None:
    assert encode(np.bool_(True)) == (True, [])
    tree, _ = encode([[np.float32(1.5), np.int64(2)], (np.bool_(False), np.float16(-0.5))])
    assert tree == [[1.5, 2], [False, -0.5]]
    assert [type(v) for v in tree[1]] == [bool, float]  # type: ignore[index]


def test_a_duration_is_not_a_number() -> None:
    assert refused(np.timedelta64(3, "D")).status == "unsupported"
    assert refused(np.complex128(1j)).status == "unsupported"


@pytest.mark.parametrize(
    ("array", "values"),
    [
        (np.array([True, False, True]), [True, False, True]),
        (np.array([0.5, -2.0], dtype=np.float16), [0.5, -2.0]),
        (np.array([[1, 2]], dtype=np.uint64), [[1, 2]]),
        (np.array(2.5), 2.5),
        (np.array(False), False),
        (np.arange(6.0).reshape(2, 3)[:, ::2], [[0.0, 2.0], [3.0, 5.0]]),
    ],
)
def test_numeric_and_bool_arrays_keep_dtype_and_shape(
    array: np.ndarray[Any, Any], values: object
) -> None:
    saved = only_array(array)
    assert saved.dtype == array.dtype and saved.shape == array.shape
    assert saved.tolist() == values


# ------------------------------------------------------------------------------ tensors


def _neg_view() -> torch.Tensor:
    view = torch.tensor([1 + 2j, 3 - 1j]).conj().imag  # a real tensor with the neg bit
    assert view.is_neg()
    return view


@pytest.mark.parametrize(
    ("make", "dtype", "values"),
    [
        (lambda: torch.tensor([1.0, 2.0], requires_grad=True), np.float32, [1.0, 2.0]),
        (lambda: torch.tensor(0.25, dtype=torch.float64, requires_grad=True), np.float64, 0.25),
        (lambda: torch.arange(6.0).reshape(2, 3).t(), np.float32, [[0, 3], [1, 4], [2, 5]]),
        (lambda: torch.arange(6).reshape(2, 3)[:, ::2], np.int64, [[0, 2], [3, 5]]),
        (lambda: torch.tensor([1.0, 2.0]).expand(2, 2), np.float32, [[1, 2], [1, 2]]),
        (_neg_view, np.float32, [-2.0, 1.0]),
        (lambda: torch.tensor([True, False]), np.bool_, [True, False]),
        (lambda: torch.tensor(3), np.int64, 3),
        (lambda: torch.tensor(True), np.bool_, True),
        (lambda: torch.tensor([7], dtype=torch.uint8), np.uint8, [7]),
        (lambda: torch.tensor([0.5, -2.0], dtype=torch.bfloat16), np.float32, [0.5, -2.0]),
        (lambda: torch.tensor([0.5], dtype=torch.float16), np.float16, [0.5]),
        (lambda: nn.Parameter(torch.ones(2, 1)), np.float32, [[1.0], [1.0]]),
        (lambda: nn.Linear(1, 1, bias=False).weight.mul(0), np.float32, [[0.0]]),
    ],
)
def test_tensors(make: Any, dtype: type[Any], values: object) -> None:
    tensor = make()
    saved = only_array(tensor)
    assert saved.dtype == dtype
    assert saved.shape == tuple(tensor.shape)  # a 0-d tensor stays 0-d
    assert saved.flags.c_contiguous
    assert saved.tolist() == values


def test_tensor_made_in_inference_mode() -> None:
    with torch.inference_mode():
        tensor = torch.ones(2) * 3
    assert only_array(tensor).tolist() == [3.0, 3.0]


class MyTensor(torch.Tensor):
    pass


class MyArray(np.ndarray):  # type: ignore[type-arg]
    pass


def test_tensors_that_stay_refused() -> None:
    meta = refused(torch.zeros(2, device="meta"))
    assert meta.message == (
        "x is a tensor on the meta device, which holds no values; compute it on the CPU or a GPU"
    )
    assert "complex tensor" in refused(torch.tensor([1j])).message
    assert "sparse or quantized" in refused(torch.eye(2).to_sparse()).message
    sub = refused(torch.zeros(2).as_subclass(MyTensor))
    assert "torch.Tensor subclass: store x.as_subclass(torch.Tensor)" in sub.message
    arr = refused(np.zeros(2).view(MyArray))
    assert "ndarray subclass: store np.asarray(x)" in arr.message


def test_refusal_names_the_accepted_forms() -> None:
    class Matrix:
        pass

    rej = refused({"m": [1, Matrix()]})
    assert rej.status == "unsupported"
    assert rej.message.startswith("x['m'][1] is a ")
    assert "Matrix, which the grader cannot read; store the answer as a number" in rej.message
    for form in (
        "torch.Size",
        "NumPy, torch or TensorFlow scalar",
        "NumPy array",
        "torch tensor",
        "tf.TensorShape",
        "TensorFlow tensor or variable",
    ):
        assert form in rej.message


# ------------------------------------------------------- TensorFlow, Keras (issue 15)


def test_tensorflow_tensors_variables_and_keras_variables_are_arrays(tf_keras: Any) -> None:
    tf, keras = tf_keras
    assert only_array(tf.constant(2.5)).tolist() == 2.5
    assert only_array(tf.constant([[1, 2]])).tolist() == [[1, 2]]
    assert only_array(tf.Variable([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert only_array(keras.Variable([3.0, 4.0])).tolist() == [3.0, 4.0]
    bf16 = only_array(tf.constant([1.5], dtype=tf.bfloat16))
    assert bf16.dtype == np.float32 and bf16.tolist() == [1.5]
    tree, arrays = encode({"loss": tf.constant(0.25), "w": [tf.constant(1)]})
    assert tree == {"loss": {"__ndarray__": "x.0.0.npy"}, "w": [{"__ndarray__": "x.0.1.npy"}]}
    assert [a.tolist() for a in arrays] == [0.25, 1]


def test_tensor_shape_is_a_list_with_null_for_unknown_dimensions(tf_keras: Any) -> None:
    tf, _ = tf_keras
    assert encode(tf.TensorShape([None, 498, 16])) == ([None, 498, 16], [])
    assert "unknown rank" in refused(tf.TensorShape(None)).message


def test_string_tensors_and_subclasses_are_refused(tf_keras: Any) -> None:
    tf, _ = tf_keras
    assert "string tensor" in refused(tf.constant("a")).message

    class MyShape(tf.TensorShape):  # type: ignore[misc,name-defined]
        pass

    assert refused(MyShape([1])).status == "unsupported"  # exact classes only
