"""Grader-side decoding of the outbox, including garbage a student may write there."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from grader.answers import read_answers
from grader.models import Answer, AnswerRequest

REQ = [AnswerRequest("q")]


def write_record(outbox: Path, value: object, **fields: object) -> None:
    record = {"name": "q", "status": "ok", "type_name": "x", "cell": 2, "message": ""}
    record.update(fields)
    record["value"] = value
    (outbox / "q.json").write_text(json.dumps(record))


def read(outbox: Path, max_bytes: int = 10**6) -> Answer:
    return read_answers(outbox, REQ, max_bytes)["q"]


def test_never_harvested_is_missing(tmp_path: Path) -> None:
    assert read(tmp_path) == Answer(name="q", status="missing", message="q was never harvested")


def test_tagged_nodes_are_decoded(tmp_path: Path) -> None:
    np.save(tmp_path / "q.1.0.npy", np.array([[1, 2]], dtype=np.int16), allow_pickle=False)
    value = {
        "arr": {"__ndarray__": "q.1.0.npy"},
        "f": [{"__float__": "nan"}, {"__float__": "-inf"}],
        "d": {"__dict__": {"__float__": "inf"}},
        "plain": {"a": 1, "b": "c"},
    }
    write_record(tmp_path, value)
    a = read(tmp_path)
    assert (a.status, a.cell, a.type_name) == ("ok", 2, "x")
    assert a.value["arr"].dtype == np.int16 and a.value["arr"].tolist() == [[1, 2]]
    assert math.isnan(a.value["f"][0]) and a.value["f"][1] == -math.inf
    assert a.value["d"] == {"__float__": "inf"}
    assert a.value["plain"] == {"a": 1, "b": "c"}


def test_non_ok_status_has_no_value(tmp_path: Path) -> None:
    write_record(tmp_path, [1], status="unsupported", message="nope")
    assert read(tmp_path) == Answer(
        name="q", status="unsupported", value=None, type_name="x", cell=2, message="nope"
    )


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "q.json is not valid JSON (JSONDecodeError)"),
        ("[1, 2]", "the answer file does not hold a JSON object"),
        (
            '{"name": "q", "status": "great", "value": 1}',
            "unknown status 'great'",
        ),
        ('{"name": "other", "status": "ok", "value": 1}', "the answer file names another answer"),
        ('{"name": "q", "status": "ok", "cell": "2", "value": 1}', "bad cell number"),
        ("[" * 100000 + "]" * 100000, "q.json is not valid JSON (RecursionError)"),
        (
            '{"name": "q", "status": "ok", "value": {"__float__": "zero"}}',
            "bad __float__ node 'zero'",
        ),
    ],
)
def test_malformed_records(tmp_path: Path, content: str, detail: str) -> None:
    (tmp_path / "q.json").write_text(content)
    a = read(tmp_path)
    assert a.status == "error"
    assert a.message == f"the grader could not read back q: {detail}"


def test_oversized_json_is_not_read(tmp_path: Path) -> None:
    write_record(tmp_path, "x" * 2000)
    a = read(tmp_path, max_bytes=1000)
    assert a.status == "error"
    assert a.message == "the grader could not read back q: q.json is larger than 1000 bytes"


@pytest.mark.parametrize(
    "fname", ["../q.npy", "/etc/passwd", "sub/q.npy", ".hidden.npy", "q.npy\n", "..npy", 5]
)
def test_array_paths_outside_the_outbox_are_refused(tmp_path: Path, fname: object) -> None:
    outbox = tmp_path / "out"
    outbox.mkdir()
    (outbox / "sub").mkdir()
    np.save(tmp_path / "q.npy", np.zeros(2))
    np.save(outbox / "sub" / "q.npy", np.zeros(2))
    write_record(outbox, {"__ndarray__": fname})
    a = read(outbox)
    assert a.status == "error"
    assert a.message == f"the grader could not read back q: bad array file name {fname!r}"


def test_object_dtype_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "q.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    write_record(tmp_path, {"__ndarray__": "q.npy"})
    a = read(tmp_path)
    assert a.status == "error"
    assert a.message == (
        "the grader could not read back q: q.npy holds dtype object, not a numeric or bool array"
    )


def test_forged_npy_header_cannot_make_the_grader_allocate(tmp_path: Path) -> None:
    path = tmp_path / "q.npy"
    with path.open("wb") as fh:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 64)
    write_record(tmp_path, {"__ndarray__": "q.npy"})
    a = read(tmp_path)
    assert a.message == "the grader could not read back q: q.npy is truncated or padded"
    (tmp_path / "q.npy").write_bytes(b"PK\x03\x04 not an npy")
    assert read(tmp_path).message.startswith("the grader could not read back q: q.npy is not")


def test_array_budget_includes_every_array(tmp_path: Path) -> None:
    for i in range(3):
        np.save(tmp_path / f"q.{i}.npy", np.zeros(100))  # 928 bytes each
    write_record(tmp_path, [{"__ndarray__": f"q.{i}.npy"} for i in range(3)])
    assert read(tmp_path, max_bytes=10**6).status == "ok"
    a = read(tmp_path, max_bytes=2500)
    assert a.message == "the grader could not read back q: q.2.npy is larger than the grader reads"


def test_symlinks_and_fifos_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"name": "q", "status": "ok", "value": 1}')
    outbox = tmp_path / "out"
    outbox.mkdir()
    (outbox / "q.json").symlink_to(secret)
    assert read(outbox).message.startswith("the grader could not read back q: q.json cannot be")
    (outbox / "q.json").unlink()
    os.mkfifo(outbox / "q.json")  # opening a FIFO for reading would block without O_NONBLOCK
    assert read(outbox).message == "the grader could not read back q: q.json is not a regular file"
    os.unlink(outbox / "q.json")
    np.save(tmp_path / "real.npy", np.zeros(2))
    (outbox / "q.0.npy").symlink_to(tmp_path / "real.npy")
    write_record(outbox, {"__ndarray__": "q.0.npy"})
    assert read(outbox).message.startswith("the grader could not read back q: q.0.npy cannot be")


def test_referenced_array_that_does_not_exist(tmp_path: Path) -> None:
    write_record(tmp_path, [1, {"__ndarray__": "q.9.0.npy"}])
    assert read(tmp_path) == Answer(
        name="q", status="error", message="the grader could not read back q: q.9.0.npy is missing"
    )
