import numpy as np
import pytest

from grader.normalize import (
    NotNumeric,
    parse_number_text,
    to_array,
    to_count,
    to_number,
    to_plain,
    to_shape,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7/4", 1.75),
        ("-3/4", -0.75),
        (" 2.5 ", 2.5),
        ("(7*3+1)*16", 352.0),
        ("128 * (3776 + 1)", 483456.0),
        ("1,234", 1234.0),
        ("−1/2", -0.5),
    ],
)
def test_number_text(text: str, value: float) -> None:
    assert parse_number_text(text) == value


@pytest.mark.parametrize(
    "text", ["abc", "__import__('os')", "2**100", "1/0", "x+1", "", "[1]", "1" * 300]
)
def test_number_text_rejects(text: str) -> None:
    with pytest.raises(NotNumeric):
        parse_number_text(text)


def test_to_array_nested_fractions_and_arrays() -> None:
    got = to_array([["1/2", "1/2", 0], [np.float64(-0.25), 0, "1/4"]])
    np.testing.assert_array_equal(got, [[0.5, 0.5, 0], [-0.25, 0, 0.25]])
    assert got.dtype == np.float64


def test_to_array_list_of_arrays_and_ragged() -> None:
    np.testing.assert_array_equal(to_array([np.array([1, 2]), np.array([3, 4])]), [[1, 2], [3, 4]])
    with pytest.raises(NotNumeric, match="different lengths"):
        to_array([[1, 2], [3]])
    with pytest.raises(NotNumeric):
        to_array(np.array(["a"]))


def test_to_number() -> None:
    assert to_number([2.5]) == 2.5
    assert to_number(np.array(3)) == 3.0
    with pytest.raises(NotNumeric):
        to_number(True)
    with pytest.raises(NotNumeric):
        to_number([1, 2])


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ("(498, 16)", (498, 16)),
        ("(,3776)", (3776,)),
        ([28, 28, 32], (28, 28, 32)),
        ("28x28x32", (28, 28, 32)),
        (np.array([5]), (5,)),
        (7, (7,)),
        ("[249, 16]", (249, 16)),
    ],
)
def test_to_shape(value: object, shape: tuple[int, ...]) -> None:
    assert to_shape(value) == shape


@pytest.mark.parametrize("value", ["(None, 498, 16)", "(2.5, 3)", [1.5, 2], "", "invalid"])
def test_to_shape_rejects(value: object) -> None:
    with pytest.raises(NotNumeric):
        to_shape(value)


def test_to_count() -> None:
    assert to_count("(7*3+1)*16") == 352
    assert to_count(352.0) == 352
    assert to_count(3.5) is None
    assert to_count("lots") is None


def test_to_plain() -> None:
    assert to_plain({"a": np.array([[1.0, float("nan")]]), "b": (np.int64(3), float("inf"))}) == {
        "a": [[1.0, "nan"]],
        "b": [3, "inf"],
    }


def test_numpy_scalars_are_numbers_and_numpy_bools_are_not() -> None:
    assert to_number(np.float16(0.5)) == 0.5
    assert to_number(np.uint8(7)) == 7.0
    with pytest.raises(NotNumeric, match="boolean"):
        to_number(np.bool_(True))


def test_shapes_as_they_arrive_from_torch() -> None:
    # torch.Size([28, 28, 32]) arrives as a list; np.array(x.shape[1:]) as an int array;
    # torch.tensor(3776) (a flattened size) as a 0-d array.
    assert to_shape([28, 28, 32]) == (28, 28, 32)
    assert to_shape(np.array([498, 16], dtype=np.int64)) == (498, 16)
    assert to_shape(np.array(3776)) == (3776,)
    with pytest.raises(NotNumeric):
        to_shape(np.array([True, False]))
    with pytest.raises(NotNumeric):
        to_shape(np.zeros((2, 2)))


def test_unreadable_values_name_the_accepted_forms() -> None:
    with pytest.raises(NotNumeric) as number:
        to_number({"a": 1})
    assert str(number.value) == (
        "expected a number (an int, a float, a NumPy or torch scalar, or a fraction string "
        'such as "7/4"), got a dict'
    )
    with pytest.raises(NotNumeric) as shape:
        to_shape("(498, 16.5)")
    assert "torch.Size included" in str(shape.value) and '"(498, 16)"' in str(shape.value)
    with pytest.raises(NotNumeric) as ragged:
        to_shape([[1, 2]])
    assert "write it as a tuple or list of whole numbers" in str(ragged.value)


def test_to_shape_leading_none_is_opt_in() -> None:
    from grader.normalize import NotNumeric, to_shape

    assert to_shape("(None, 498, 16)", leading_none=True) == (498, 16)
    assert to_shape([None, 498, 16], leading_none=True) == (498, 16)
    assert to_shape("None, 3776", leading_none=True) == (3776,)
    assert to_shape((498, 16), leading_none=True) == (498, 16)
    for bad in ("(None, 1, 5)", [None, 1, 5], (1, None)):
        with pytest.raises(NotNumeric, match="holds None"):
            to_shape(bad)
    with pytest.raises(NotNumeric):
        to_shape("(498, None)", leading_none=True)  # only the batch axis may be None
