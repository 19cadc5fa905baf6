"""The in-kernel harness, run in-process: encoding, model probes, and decoding back.

Every case goes through the real file format: ``harvest`` writes the outbox and
``grader.answers.read_answers`` decodes it, so these are round-trip tests.
"""

from __future__ import annotations

import collections
import fractions
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from grader.answers import read_answers
from grader.harness import kernel
from grader.models import Answer, AnswerRequest, ProbeSpec

MAX_BYTES = 64 * 2**20


def harvest(
    tmp_path: Path,
    ns: dict[str, Any],
    requests: list[AnswerRequest],
    *,
    cell: int = 1,
    final: bool = False,
    setup: bool = True,
    max_answer_bytes: int = MAX_BYTES,
) -> dict[str, Answer]:
    """Run the harness on ``ns`` into ``tmp_path/out`` and decode what it wrote."""
    import json
    from dataclasses import asdict

    outbox = tmp_path / "out"
    outbox.mkdir(exist_ok=True)
    if setup:
        kernel.setup(str(outbox), 0, max_answer_bytes=max_answer_bytes, harvest_timeout_s=7)
    payload = json.dumps(
        [
            {"name": r.name, "kind": r.kind, "probe": asdict(r.probe) if r.probe else None}
            for r in requests
        ]
    )
    kernel.harvest(ns, payload, cell, final)
    return read_answers(outbox, requests, MAX_BYTES)


def value_of(tmp_path: Path, x: object) -> Answer:
    return harvest(tmp_path, {"x": x}, [AnswerRequest("x")])["x"]


# ---------------------------------------------------------------------------- values


def test_list_of_tensors_round_trips_as_float32_arrays(tmp_path: Path) -> None:
    x = [torch.tensor([1.0, 2.0], requires_grad=True), torch.arange(6).reshape(2, 3)]
    a = value_of(tmp_path, x)
    assert (a.status, a.type_name, a.cell) == ("ok", "list", 1)
    first, second = a.value
    assert first.dtype == np.float32 and first.tolist() == [1.0, 2.0]
    assert second.dtype == np.int64 and second.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_bfloat16_tensor_and_parameter(tmp_path: Path) -> None:
    a = value_of(tmp_path, torch.tensor([0.5, -2.0], dtype=torch.bfloat16))
    assert a.type_name == "torch.Tensor"
    assert a.value.dtype == np.float32 and a.value.tolist() == [0.5, -2.0]
    p = value_of(tmp_path, nn.Parameter(torch.ones(2, 2)))
    assert p.type_name == "torch.nn.parameter.Parameter"
    assert p.value.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_numpy_scalars_become_python_numbers(tmp_path: Path) -> None:
    a = value_of(tmp_path, [np.float32(1.5), np.int64(7), np.bool_(True), np.str_("hi")])
    assert a.value == [1.5, 7, True, "hi"]
    assert [type(v) for v in a.value] == [float, int, bool, str]
    assert value_of(tmp_path, np.float64(0.25)).type_name == "numpy.float64"


def test_fraction_tuple_dict_and_nonfinite_floats(tmp_path: Path) -> None:
    assert value_of(tmp_path, fractions.Fraction(6, 8)).value == "3/4"
    assert value_of(tmp_path, (1, (2, 3))).value == [1, [2, 3]]
    assert value_of(tmp_path, {"a": 1, "b": [None, "s"]}).value == {"a": 1, "b": [None, "s"]}
    nan, inf, ninf, big = value_of(tmp_path, [math.nan, math.inf, np.float64(-np.inf), 1e308]).value
    assert math.isnan(nan) and inf == math.inf and ninf == -math.inf and big == 1e308


def test_dict_looking_like_a_tag_is_not_decoded_as_one(tmp_path: Path) -> None:
    assert value_of(tmp_path, {"__float__": "nan"}).value == {"__float__": "nan"}
    assert value_of(tmp_path, {"__ndarray__": "../../x.npy"}).value == {
        "__ndarray__": "../../x.npy"
    }


def test_numpy_arrays(tmp_path: Path) -> None:
    a = value_of(tmp_path, np.array([[1.0, 2.0]], dtype=np.float64))
    assert a.value.dtype == np.float64 and a.value.shape == (1, 2)
    b = value_of(tmp_path, np.array([True, False]))
    assert b.value.dtype == np.bool_ and b.value.tolist() == [True, False]
    c = value_of(tmp_path, np.array([1, "a", None], dtype=object))
    assert c.value == [1, "a", None]
    assert value_of(tmp_path, np.array(["x", "yz"])).value == ["x", "yz"]
    assert value_of(tmp_path, np.zeros(2, dtype=complex)).status == "unsupported"


def test_answer_types_students_use_round_trip(tmp_path: Path) -> None:
    """torch.Size, named tuples, OrderedDict, 0-d tensors and NumPy bool arrays (issue 11)."""
    row = collections.namedtuple("row", "name shape params")
    ns = {
        "shape": torch.zeros(1, 28, 28, 32).shape[1:],
        "table": [row("Flatten", torch.Size([3776]), np.int64(0))],
        "weights": collections.OrderedDict(w=torch.ones(1, 2, requires_grad=True)),
        "count": torch.tensor(2080),
        "tf": np.array([False, True, False, True]),
    }
    got = harvest(tmp_path, ns, [AnswerRequest(n) for n in ns])
    assert (got["shape"].status, got["shape"].type_name) == ("ok", "torch.Size")
    assert got["shape"].value == [28, 28, 32]
    assert got["table"].value == [["Flatten", [3776], 0]]
    assert got["weights"].value["w"].tolist() == [[1.0, 1.0]]
    assert got["count"].value.shape == () and got["count"].value.tolist() == 2080
    assert got["tf"].value.dtype == np.bool_
    assert got["tf"].value.tolist() == [False, True, False, True]


class Liar:
    """A student object whose dunder methods lie or never return."""

    touched = False

    def __eq__(self, other: object) -> bool:
        Liar.touched = True
        return True

    __hash__ = object.__hash__

    def __float__(self) -> float:
        Liar.touched = True
        return 1.0

    def __len__(self) -> int:
        Liar.touched = True
        raise RuntimeError("no")

    def __iter__(self) -> Any:
        Liar.touched = True
        while True:
            yield 1

    def __array__(self, *args: object, **kwargs: object) -> Any:
        Liar.touched = True
        return np.zeros(1)


class LyingFloat(float):
    def __float__(self) -> float:
        raise RuntimeError("never called")


class LyingArray(np.ndarray):
    pass


class LyingTensor(torch.Tensor):
    pass


def test_unsupported_objects_are_never_touched(tmp_path: Path) -> None:
    Liar.touched = False
    a = value_of(tmp_path, [1, Liar()])
    assert a.status == "unsupported"
    assert a.type_name == "list"
    assert a.message.startswith("x[1] is a ") and "Liar, which the grader cannot read" in a.message
    assert not Liar.touched
    assert value_of(tmp_path, Liar()).type_name.endswith("test_kernel.Liar")
    assert value_of(tmp_path, LyingFloat(2.0)).status == "unsupported"
    assert value_of(tmp_path, np.zeros(2).view(LyingArray)).status == "unsupported"
    assert value_of(tmp_path, torch.zeros(2).as_subclass(LyingTensor)).status == "unsupported"
    assert value_of(tmp_path, (i for i in range(3))).status == "unsupported"
    assert value_of(tmp_path, lambda: 1).type_name == "function"
    assert not Liar.touched


def test_dict_with_non_string_keys_is_unsupported(tmp_path: Path) -> None:
    a = value_of(tmp_path, {1: "a"})
    assert a.status == "unsupported"
    assert a.message == (
        "x is a dict with a int key; the grader reads dicts whose keys are strings"
    )


def test_limits_on_size_and_depth(tmp_path: Path) -> None:
    big = value_of(tmp_path, np.zeros(10**7 + 1, dtype=np.uint8))
    assert big.status == "too_large"
    assert "more than 10,000,000 elements" in big.message
    deep: list[Any] = []
    for _ in range(25):
        deep = [deep]
    assert value_of(tmp_path, deep).status == "unsupported"
    loop: list[Any] = []
    loop.append(loop)
    circular = value_of(tmp_path, loop)
    assert circular.status == "unsupported"
    assert "nested more than 20 levels deep" in circular.message
    capped = harvest(tmp_path, {"x": np.zeros(1000)}, [AnswerRequest("x")], max_answer_bytes=4000)[
        "x"
    ]
    assert capped.status == "too_large"
    assert capped.message == "x makes the answer larger than the 0 MiB the grader reads"


def test_deleted_name_is_missing_and_old_arrays_are_removed(tmp_path: Path) -> None:
    ns: dict[str, Any] = {"x": np.arange(3)}
    req = [AnswerRequest("x")]
    assert harvest(tmp_path, ns, req)["x"].value.tolist() == [0, 1, 2]
    ns["x"] = np.arange(2)
    assert harvest(tmp_path, ns, req, cell=2, setup=False)["x"].value.tolist() == [0, 1]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["x.2.0.npy", "x.json"]
    del ns["x"]
    assert harvest(tmp_path, ns, req, cell=3, setup=False)["x"].status == "missing"
    assert list((tmp_path / "out").iterdir()) == []


# ---------------------------------------------------------------------------- models


class Cat4(nn.Module):
    """Splits its input in four and concatenates the pieces back on the last dim."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c, d = torch.chunk(self.lin(x), 4, dim=1)
        y = torch.cat([a, b, c, d], dim=-1)
        return torch.concat((y, y), 0)


class Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom")


def probe(tmp_path: Path, obj: object, shape: tuple[int, ...], **kw: Any) -> Answer:
    spec = ProbeSpec(input_shape=shape, low=-1.0, high=1.0, seed=3)
    return harvest(tmp_path, {"m": obj}, [AnswerRequest("m", "model", spec)], **kw)["m"]


def test_probe_of_a_sequential(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    model[0].bias.requires_grad_(False)
    a = probe(tmp_path, model, (5, 4))
    assert (a.status, a.type_name) == ("ok", "torch.nn.modules.container.Sequential")
    v = a.value
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand((5, 4), generator=gen, dtype=torch.float64) * 2.0 - 1.0).float()
    expected = model(x).detach()
    assert v["ran"] is True and v["error"] is None
    assert v["output_type"] == "torch.Tensor"
    assert v["output_shape"] == [5, 2] and v["output_dtype"] == "float32"
    assert v["output_min"] == pytest.approx(float(expected.min()), abs=1e-6)
    assert v["output_max"] == pytest.approx(float(expected.max()), abs=1e-6)
    assert v["output_finite"] is True
    assert (v["trainable_params"], v["total_params"]) == (20, 23)
    assert v["cat_calls"] == []
    assert v["modules"] == [
        {"name": "0", "type": "Linear", "output_shape": [5, 3]},
        {"name": "1", "type": "ReLU", "output_shape": [5, 3]},
        {"name": "2", "type": "Linear", "output_shape": [5, 2]},
    ]


def test_probe_records_concatenations(tmp_path: Path) -> None:
    v = probe(tmp_path, Cat4(), (2, 8)).value
    assert v["cat_calls"] == [
        {"n_inputs": 4, "dim": 1, "shapes": [[2, 2]] * 4},
        {"n_inputs": 2, "dim": 0, "shapes": [[2, 8], [2, 8]]},
    ]
    assert v["output_shape"] == [4, 8]
    assert v["modules"] == [{"name": "lin", "type": "Linear", "output_shape": [2, 8]}]


def test_probe_of_a_failing_forward(tmp_path: Path) -> None:
    v = probe(tmp_path, Broken(), (1, 2)).value
    assert v["ran"] is False
    assert v["error"] == "ValueError: boom"
    assert 'raise ValueError("boom")' in v["traceback"]
    assert v["output_shape"] is None and (v["trainable_params"], v["total_params"]) == (0, 0)


def test_probe_requires_a_module(tmp_path: Path) -> None:
    a = probe(tmp_path, [1, 2], (1, 2))
    assert a.status == "unsupported"
    assert a.message == "m must be a torch.nn.Module or a Keras model, got list"


def test_probe_keeps_training_flags_and_rng(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    model[0].eval()
    (tmp_path / "out").mkdir()
    kernel.setup(str(tmp_path / "out"), 0)  # seeds torch with 0: reseed afterwards
    torch.manual_seed(11)
    before = torch.get_rng_state()
    assert probe(tmp_path, model, (3, 2), setup=False).value["ran"] is True
    assert torch.equal(torch.get_rng_state(), before)
    assert (model.training, model[0].training, model[1].training) == (True, False, True)


def test_model_is_reprobed_only_when_rebound_or_final(tmp_path: Path) -> None:
    calls: list[int] = []

    class Counting(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return x

    spec = ProbeSpec(input_shape=(1, 2))
    ns: dict[str, Any] = {"m": Counting()}
    req = [AnswerRequest("m", "model", spec)]
    harvest(tmp_path, ns, req, cell=1)
    harvest(tmp_path, ns, req, cell=2, setup=False)
    assert len(calls) == 1
    ns["m"] = Counting()
    assert harvest(tmp_path, ns, req, cell=3, setup=False)["m"].cell == 3
    assert len(calls) == 2
    assert harvest(tmp_path, ns, req, cell=4, final=True, setup=False)["m"].cell == 4
    assert len(calls) == 3
