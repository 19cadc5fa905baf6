"""The module worker, run unsandboxed: import limits, per-call failures, hangs, in-place
detection, stored values, stateful arguments, seeds and forged outbox contents.

Each test writes a tiny ``layers.py`` in ``tmp_path``; limits are short, so every test
finishes in a few seconds.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.models import Call, ModuleRun, Stored
from grader.sandbox import ExecutionLimits
from grader.sandbox.module import read_call, run_module

FAST = ExecutionLimits(import_timeout=2, call_timeout=1, module_timeout=60)


def run(
    tmp_path: Path, source: str, calls: list[Call], limits: ExecutionLimits = FAST
) -> ModuleRun:
    work, outbox, inbox = tmp_path / "work", tmp_path / "out", tmp_path / "in"
    work.mkdir(parents=True)
    outbox.mkdir()
    (work / "layers.py").write_text(source)
    return run_module(work / "layers.py", work, outbox, inbox, calls, limits)


LAYERS = """
import numpy as np
print("noise on stdout")

def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)

def affine_backward(dout, cache):
    x, w, b = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(0)

def boom(x):
    raise ValueError("shapes do not match")

def double_in_place(x):
    x *= 2
    return x

def pure(x):
    return x * 2

def hang(x):
    import signal
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass

def soft_hang(x):
    while True:
        pass

def bn(x, bn_param):
    bn_param["running_mean"] = x.mean(axis=0)
    return x, None

def draw():
    import random
    return np.random.rand(3), random.random()

def weird():
    return (np.ones(2), object())

def ident(*args, **kwargs):
    return list(args), kwargs
"""


def test_import_timeout_names_the_limit(tmp_path: Path) -> None:
    r = run(tmp_path, "while True:\n    pass\n", [Call("a", "f")])
    assert r.import_error == ("importing layers.py took longer than 2 s: does it train at import?")
    assert r.results["a"].status == "not_run"


def test_import_that_ignores_the_alarm_is_killed(tmp_path: Path) -> None:
    source = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n"
    r = run(tmp_path, source, [Call("a", "f")])
    assert r.import_error is not None and "took longer than 2 s" in r.import_error


def test_syntax_error_and_raising_import(tmp_path: Path) -> None:
    r = run(tmp_path, "def f(x)\n    return x\n", [Call("a", "f")])
    assert r.import_error is not None
    assert r.import_error.startswith("layers.py has a syntax error on line 1")
    r = run(tmp_path / "b", "import numpy\nx = 1 / 0\n", [Call("a", "f")])
    assert r.import_error is not None
    assert "raised ZeroDivisionError" in r.import_error and "line 2 of layers.py" in r.import_error


def test_calls_errors_missing_and_in_place(tmp_path: Path) -> None:
    x = np.arange(1.0, 7.0).reshape(2, 3)
    calls = [
        Call("boom", "boom", (x,)),
        Call("missing", "nope", ()),
        Call("not_callable", "np", ()),
        Call("inplace", "double_in_place", (x,)),
        Call("pure", "pure", (x,)),
    ]
    r = run(tmp_path, LAYERS, calls)
    assert r.import_error is None
    boom = r.results["boom"]
    assert boom.status == "error"
    assert boom.message == "boom raised ValueError: shapes do not match (line 13 of layers.py)"
    assert "layers.py" in boom.traceback and "<grader" not in boom.traceback
    assert r.results["missing"].status == "missing_function"
    assert r.results["missing"].message == "layers.py defines no function nope"
    assert r.results["not_callable"].status == "missing_function"
    assert r.results["inplace"].mutated == (0,)
    assert r.results["pure"].mutated == ()
    np.testing.assert_array_equal(r.results["pure"].value, x * 2)


def test_hang_kills_the_worker_and_the_rest_runs_in_a_new_one(tmp_path: Path) -> None:
    x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    calls = [
        Call("fw", "affine_forward", (x, w, b), store="fw"),
        Call("hang1", "hang", (1,)),
        Call("hang2", "hang", (2,)),
        Call("soft", "soft_hang", (1,)),
        Call("bw", "affine_backward", (np.ones((2, 4)), Stored("fw", 1))),
    ]
    r = run(tmp_path, LAYERS, calls)
    assert r.results["hang1"].status == "timeout"
    assert "could not be interrupted" in r.results["hang1"].message
    assert r.results["hang2"].status == "not_run"
    assert "an earlier call of hang" in r.results["hang2"].message
    # Interrupted by the worker's own alarm: no restart needed for it.
    assert r.results["soft"].status == "timeout"
    assert r.results["soft"].message == "soft_hang did not finish within 1 s and was stopped"
    # The backward's forward ran again in the new worker, so the cache was there.
    bw = r.results["bw"]
    assert bw.status == "ok"
    np.testing.assert_array_equal(bw.value[0], np.full((2, 3), 4.0))


def test_too_many_restarts_leave_the_rest_not_run(tmp_path: Path) -> None:
    calls = [Call(f"h{i}", "hang", (i,)) for i in range(1)]
    calls += [Call("die", "ident", ()), Call("p", "pure", (np.ones(2),))]
    limits = ExecutionLimits(import_timeout=2, call_timeout=1, max_restarts=0)
    r = run(tmp_path, LAYERS, calls, limits)
    assert r.results["h0"].status == "timeout"
    assert r.results["p"].status == "not_run"
    assert r.warnings and "gave up" in r.warnings[0]


def test_stored_values_and_failed_forwards(tmp_path: Path) -> None:
    x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    calls = [
        Call("fw", "affine_forward", (x, w, b), store="fw"),
        Call("whole", "ident", (Stored("fw"),)),
        Call("cache", "ident", (Stored("fw", 1),)),
        Call("bad_fw", "boom", (x,), store="bad"),
        Call("needs_bad", "ident", (Stored("bad", 1),)),
        Call("not_tuple", "pure", (x,), store="arr"),
        Call("needs_tuple", "ident", (Stored("arr", 1),)),
    ]
    r = run(tmp_path, LAYERS, calls)
    whole = r.results["whole"].value[0][0]
    np.testing.assert_array_equal(whole[0], np.full((2, 4), 3.0))
    cache = r.results["cache"].value[0][0]
    assert len(cache) == 3
    needs = r.results["needs_bad"]
    assert needs.status == "not_run"
    assert (
        needs.message == "not run: it needs what bad_fw returned, and that call raised ValueError"
    )
    assert r.results["needs_tuple"].status == "not_run"
    assert "returned a numpy.ndarray, not a tuple" in r.results["needs_tuple"].message


def test_return_args_and_kwargs(tmp_path: Path) -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    calls = [
        Call("bn", "bn", (x, {"mode": "train", "eps": 1e-5}), return_args=(1,)),
        Call("kw", "ident", (1, "s", (2, 3)), kwargs={"k": [1.5, None], "__float__": 2}),
    ]
    r = run(tmp_path, LAYERS, calls)
    after = r.results["bn"].args_after[1]
    assert after["mode"] == "train" and after["eps"] == 1e-5
    np.testing.assert_array_equal(after["running_mean"], [2.0, 3.0])
    args, kwargs = r.results["kw"].value
    assert args == [1, "s", [2, 3]]
    assert kwargs == {"k": [1.5, None], "__float__": 2}


def test_seeds(tmp_path: Path) -> None:
    r = run(tmp_path, LAYERS, [Call("a", "draw", (), seed=3), Call("b", "draw", (), seed=3)])
    np.random.seed(3)
    random.seed(3)
    want = np.random.rand(3), random.random()
    for cid in ("a", "b"):
        got = r.results[cid].value
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1]


def test_unreadable_element_of_a_tuple(tmp_path: Path) -> None:
    r = run(tmp_path, LAYERS, [Call("w", "weird", ())])
    res = r.results["w"]
    assert res.status == "ok" and res.value[1] is None
    np.testing.assert_array_equal(res.value[0], np.ones(2))
    assert "which the grader cannot read" in res.message


TUPLE_SUBCLASSES = """
import collections

Pair = collections.namedtuple("Pair", "out cache")


class Sneaky(tuple):
    def __iter__(self):
        raise RuntimeError("the grader called my __iter__")

    def __len__(self):
        raise RuntimeError("the grader called my __len__")

    def __getitem__(self, i):
        raise RuntimeError("the grader called my __getitem__")


def forward(x):
    return Pair(x * 2, "cache of forward")


def sneaky(x):
    return Sneaky((x * 3, "cache of sneaky"))


def ident(*args):
    return list(args)
"""


def test_tuple_subclass_returns_and_stored_items(tmp_path: Path) -> None:
    x = np.array([1.0, 2.0])
    calls = [
        Call("fw", "forward", (x,), store="fw"),
        Call("sn", "sneaky", (x,), store="sn"),
        Call("fw_cache", "ident", (Stored("fw", 1),)),
        Call("sn_cache", "ident", (Stored("sn", 1),)),
    ]
    r = run(tmp_path, TUPLE_SUBCLASSES, calls)
    fw, sn = r.results["fw"], r.results["sn"]
    assert (fw.status, sn.status) == ("ok", "ok")
    np.testing.assert_array_equal(fw.value[0], [2.0, 4.0])
    assert fw.value[1] == "cache of forward"
    np.testing.assert_array_equal(sn.value[0], [3.0, 6.0])
    assert sn.value[1] == "cache of sneaky"
    assert r.results["fw_cache"].value == ["cache of forward"]
    assert r.results["sn_cache"].value == ["cache of sneaky"]


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"id": "c", "status": "magic"}).encode(),
        json.dumps({"id": "other", "status": "ok"}).encode(),
        json.dumps({"id": "c", "status": "ok", "value": {"__ndarray__": "../../etc.npy"}}).encode(),
        json.dumps({"id": "c", "status": "ok", "value": {"__ndarray__": "missing.npy"}}).encode(),
        json.dumps({"id": "c", "status": "ok", "mutated": [7]}).encode(),
        json.dumps({"id": "c", "status": "ok", "args_after": {"0": 1}}).encode(),
        json.dumps({"id": "c", "status": "ok", "value": {"__ndarray__": "obj.npy"}}).encode(),
        b" " * (2 * 2**20),
    ],
)
def test_forged_outbox_garbage_is_an_error_result(tmp_path: Path, content: bytes) -> None:
    outbox = tmp_path / "out"
    outbox.mkdir()
    np.save(outbox / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (outbox / "call-0.json").write_bytes(content)
    call = Call("c", "f", (np.ones(2),))
    res = read_call(outbox, 0, call, 2**20)
    assert res.status == "error"
    assert res.message.startswith("the grader could not read back what f returned")


def test_symlinked_result_is_refused(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    outbox.mkdir()
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"id": "c", "status": "ok", "value": 1}))
    os.symlink(secret, outbox / "call-0.json")
    call = Call("c", "f")
    assert read_call(outbox, 0, call, FAST.max_call_bytes).status == "error"


def test_duplicate_call_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="used twice"):
        run(tmp_path, LAYERS, [Call("a", "pure"), Call("a", "pure")])


def test_torch_model_argument_is_built_from_plain_data(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    layers = [
        ["conv", "Conv2d", {"in_channels": 1, "out_channels": 2, "kernel_size": 3}],
        ["flatten", "Flatten", {}],
    ]
    weight = np.arange(18, dtype=np.float64).reshape(2, 1, 3, 3)
    model = {
        "__torch_model__": {
            "layers": layers,
            "state": {"conv.weight": weight, "conv.bias": np.zeros(2)},
        }
    }
    source = (
        "def describe(model, x):\n"
        "    import torch\n"
        "    return [type(model).__name__, [n for n, _ in model.named_children()],\n"
        "            model.training, model(torch.as_tensor(x)).detach().numpy()]\n"
    )
    x = np.ones((1, 1, 3, 3))
    bad = {"__torch_model__": {"layers": [["x", "Module", {}]], "state": {}}}
    calls = [Call("m", "describe", (model, x)), Call("bad", "describe", (bad, x))]
    slow_import = ExecutionLimits(import_timeout=2, call_timeout=30, module_timeout=120)
    r = run(tmp_path, source, calls, slow_import)  # the first call imports torch
    name, children, training, out = r.results["m"].value
    assert (name, children, training) == ("Sequential", ["conv", "flatten"], False)
    np.testing.assert_allclose(out, [[weight[0].sum(), weight[1].sum()]])
    assert r.results["bad"].status != "ok"
    assert "not allowed" in r.results["bad"].message
    assert torch is not None


def test_each_call_seeds_tensorflow_like_numpy_and_torch(tf_keras: Any) -> None:
    """A randomised function written with TensorFlow ops (HW1's dropout) draws the same
    numbers on every call with the same seed (issue 15)."""
    from grader.harness import worker as worker_module

    tf, _ = tf_keras
    draws = []
    for _ in range(2):
        worker_module._seed_tensorflow(7)
        draws.append(float(tf.random.uniform(())))
    worker_module._seed_tensorflow(8)
    other = float(tf.random.uniform(()))
    assert draws[0] == draws[1] and other != draws[0]


TF_OPS = """
import tensorflow as tf

def forward_pass(x, w):
    return tf.nn.relu(tf.matmul(x, w))

def dropout(x, p):
    # seed 004's bug: scaled by 1/p instead of 1/(1 - p)
    keep = tf.cast(tf.random.uniform(tf.shape(x), dtype=x.dtype) >= p, x.dtype)
    return x * keep / p

def scalar_loss(x):
    return tf.reduce_mean(x)

def variables():
    return {"W1": tf.Variable([[1.0, 2.0]]), "b1": tf.Variable([0.5])}
"""


def test_module_written_with_tensorflow_ops(tmp_path: Path) -> None:
    """HW1 in TensorFlow (issue 15): NumPy float64 in, tensors and variables out."""
    x = np.array([[1.0, -2.0], [3.0, 4.0]])
    w = np.eye(2)
    calls = [
        Call("fwd", "forward_pass", (x, w)),
        Call("drop1", "dropout", (np.ones((4, 50)), 0.5), seed=3),
        Call("drop2", "dropout", (np.ones((4, 50)), 0.5), seed=3),
        Call("loss", "scalar_loss", (x,)),
        Call("vars", "variables"),
    ]
    limits = ExecutionLimits(import_timeout=120, call_timeout=60, module_timeout=300)
    r = run(tmp_path, TF_OPS, calls, limits)
    assert r.import_error is None, r.import_error
    got = r.results
    assert all(c.status == "ok" for c in got.values()), [(c.id, c.message) for c in got.values()]
    assert got["fwd"].value.tolist() == [[1.0, 0.0], [3.0, 4.0]]
    assert got["fwd"].value.dtype == np.float64
    # seeded per call: the same draws twice, every kept unit scaled by 1/p = 2
    assert got["drop1"].value.tolist() == got["drop2"].value.tolist()
    assert set(np.unique(got["drop1"].value).tolist()) == {0.0, 2.0}
    assert float(got["loss"].value) == 1.5
    assert got["vars"].value["W1"].tolist() == [[1.0, 2.0]]
