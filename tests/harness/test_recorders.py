"""The structure recorders, in-process (no sandbox): what arrives from the student's torch
code, under which names, bounded, and nothing left installed afterwards. Then the two
places that use them: the model probe (round trip through the outbox) and a module
worker's recorded call (a real, unsandboxed worker process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.answers import read_answers
from grader.harness import kernel, recorders
from grader.harness.recorders import MAX_LAYERS, MAX_NAMES, Off, Recorder, clean_record, for_call
from grader.models import AnswerRequest, Call, ProbeSpec
from grader.sandbox import ExecutionLimits
from grader.sandbox.module import run_module


class Encoder(nn.Module):
    """An encoder block: attention, a norm, a feed-forward net."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.ff = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, _ = self.attn(x, x, x)
        x = self.norm(x + a)
        return x + self.ff(x)


class MyAttention(nn.MultiheadAttention):
    """A student's subclass: still a MultiheadAttention."""


def recorded(fn: Any, model: nn.Module | None = None) -> dict[str, Any]:
    with Recorder(torch, model) as rec:
        fn()
    return rec.record()


def no_hooks_left() -> bool:
    module = torch.nn.modules.module
    return not module._global_forward_hooks and not module._global_forward_pre_hooks


def test_layer_list_of_an_encoder_in_call_order_with_names_and_shapes() -> None:
    torch.manual_seed(0)
    model = Encoder().eval()
    x = torch.rand(2, 10, 16)
    with torch.no_grad():
        rec = recorded(lambda: model(x), model)
    assert rec["layers"] == [
        {"type": f"{__name__}.Encoder", "name": "", "depth": 0, "output_shape": [2, 10, 16]},
        # attention returns (output, weights averaged over heads)
        {
            "type": "torch.nn.MultiheadAttention",
            "name": "attn",
            "depth": 1,
            "output_shape": [[2, 10, 16], [2, 10, 10]],
        },
        {"type": "torch.nn.LayerNorm", "name": "norm", "depth": 1, "output_shape": [2, 10, 16]},
        {"type": "torch.nn.Sequential", "name": "ff", "depth": 1, "output_shape": [2, 10, 16]},
        {"type": "torch.nn.Linear", "name": "ff.0", "depth": 2, "output_shape": [2, 10, 32]},
        {"type": "torch.nn.ReLU", "name": "ff.1", "depth": 2, "output_shape": [2, 10, 32]},
        {"type": "torch.nn.Linear", "name": "ff.2", "depth": 2, "output_shape": [2, 10, 16]},
    ]
    assert rec["modules"]["torch.nn.Linear"] == 2
    # The attention's own functional form is seen, not what runs inside it.
    assert rec["functions"]["torch.nn.functional.multi_head_attention_forward"] == 1
    assert "torch.nn.functional.scaled_dot_product_attention" not in rec["functions"]
    # Parameters inside modules of each type: attention 4 * (16*16 + 16) = 1088; the
    # out_proj inside it is a Linear subclass, so Linear holds 272 + 528 + 528 + 16.
    assert rec["params"]["torch.nn.MultiheadAttention"] == 1088
    assert rec["params"]["torch.nn.Linear"] == 272 + (16 * 32 + 32) + (32 * 16 + 16)
    assert rec["params"][f"{__name__}.Encoder"] == sum(p.numel() for p in model.parameters())
    assert rec["error"] is None
    assert no_hooks_left()


def test_a_subclass_carries_its_torch_base() -> None:
    attn = MyAttention(8, 2, batch_first=True)
    x = torch.rand(1, 3, 8)
    rec = recorded(lambda: attn(x, x, x), attn)
    label = f"{__name__}.MyAttention"
    assert rec["modules"] == {label: 1}
    assert rec["types"][label] == [label, "torch.nn.MultiheadAttention"]
    assert rec["params"]["torch.nn.MultiheadAttention"] == 4 * (8 * 8 + 8)


def test_names_of_common_spellings() -> None:
    q = torch.rand(2, 3, 4, dtype=torch.float64, requires_grad=True)

    def student() -> None:
        F.softmax(q, -1)
        torch.softmax(q, -1)
        q.softmax(-1)
        _ = q.shape, q.dtype  # attribute reads are not function calls
        q @ q.transpose(-1, -2)
        torch.matmul(q, q.transpose(-1, -2))
        F.scaled_dot_product_attention(q, q, q)
        torch.autograd.grad((q * q).sum(), q)
        (q * 2).sum().backward()
        q.detach().exp_()

    functions = recorded(student)["functions"]
    assert functions == {
        "torch.nn.functional.softmax": 1,
        "torch.softmax": 1,
        "torch.Tensor.softmax": 1,
        "torch.Tensor.transpose": 2,
        "torch.Tensor.matmul": 1,  # x @ y
        "torch.matmul": 1,
        "torch.nn.functional.scaled_dot_product_attention": 1,
        "torch.Tensor.mul": 2,
        "torch.Tensor.sum": 2,
        "torch.autograd.grad": 1,
        "torch.Tensor.backward": 1,
        "torch.Tensor.detach": 1,
        "torch.Tensor.exp_": 1,
    }


def test_sizes_are_bounded() -> None:
    x = torch.rand(2, 2)
    relu = nn.ReLU()

    def many() -> None:
        for _ in range(5000):
            torch.matmul(x, x)
        for _ in range(MAX_LAYERS + 50):
            relu(x)

    rec = recorded(many)
    assert rec["functions"]["torch.matmul"] == 5000
    assert len(rec["layers"]) == MAX_LAYERS and rec["layers_dropped"] == 50
    assert rec["modules"] == {"torch.nn.ReLU": MAX_LAYERS + 50}  # every call still counted
    # Many distinct names: the first MAX_NAMES are kept, calls of later ones only counted.
    rec = Recorder(torch)
    rec.functions = {f"torch.f{i}": 1 for i in range(MAX_NAMES - 2)}
    with rec:
        for fn in (torch.sin, torch.cos, torch.tan, torch.exp, torch.log1p, torch.abs):
            fn(x)
    out = rec.record()
    assert len(out["functions"]) == MAX_NAMES and out["functions_dropped"] == 4
    assert len(json.dumps(out)) < 100_000


def test_a_raising_forward_keeps_what_ran_and_removes_everything() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x).view(7)

    model = Broken()
    rec = Recorder(torch, model)
    with pytest.raises(RuntimeError), rec:
        model(torch.rand(2, 3))
    out = rec.record()
    assert [(r["type"], r["output_shape"]) for r in out["layers"]] == [
        (f"{__name__}.{Broken.__qualname__}", None),
        ("torch.nn.Linear", [2, 3]),
    ]
    assert no_hooks_left()
    torch.softmax(torch.rand(2), 0)  # after the block: not recorded
    assert "torch.softmax" not in rec.record()["functions"]


def test_off_and_for_call() -> None:
    assert isinstance(for_call(None), Off) and isinstance(for_call(1), Off)
    with for_call(None) as off:
        torch.softmax(torch.rand(2), 0)
    assert off.record() is None
    assert isinstance(for_call(True), Recorder)
    rec = Recorder(None)
    with rec:
        pass
    assert rec.record()["error"] == "torch is not installed, so nothing could be recorded"


def test_clean_record_reads_untrusted_data() -> None:
    assert clean_record(None) is None and clean_record([1]) is None
    forged = {
        "layers": [{"type": "x.Y", "depth": -3, "output_shape": [[1, 2], "no"]}, "junk"] * 400,
        "modules": {"x.Y": 2, "bad": -1, "worse": "3"},
        "functions": {f"torch.f{i}": 1 for i in range(1000)},
        "functions_dropped": -5,
        "params": {"x.Y": 3.5},
        "types": {"x.Y": ["x.Y", 3]},
        "error": 7,
    }
    out = clean_record(forged)
    assert out is not None
    assert len(out["layers"]) <= MAX_LAYERS
    assert out["layers"][0] == {
        "type": "x.Y",
        "name": None,
        "depth": 0,
        "output_shape": [[1, 2], None],
    }
    assert out["modules"] == {"x.Y": 2}
    assert len(out["functions"]) == MAX_NAMES and out["functions_dropped"] == 0
    assert out["params"] == {} and out["types"] == {"x.Y": ["x.Y"]} and out["error"] is None


def test_recorders_never_import_grader() -> None:
    source = Path(recorders.__file__).read_text()
    assert "import grader" not in source and "from grader" not in source


# ------------------------------------------------------------------ where they run


def test_the_model_probe_records_the_structure(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    outbox.mkdir()
    kernel.setup(str(outbox), 0, harvest_timeout_s=7)
    request = AnswerRequest("m", "model", ProbeSpec(input_shape=(2, 10, 16)))
    payload = json.dumps([{"name": "m", "kind": "model", "probe": {"input_shape": [2, 10, 16]}}])
    kernel.harvest({"m": Encoder()}, payload, 1, True)
    value = read_answers(outbox, [request], 2**26)["m"].value
    structure = clean_record(value["structure"])
    assert structure is not None
    assert [r["type"] for r in structure["layers"]][:2] == [
        f"{__name__}.Encoder",
        "torch.nn.MultiheadAttention",
    ]
    assert structure["params"]["torch.nn.MultiheadAttention"] == 1088
    # The probe's older leaf-module list and its cat recorder are unchanged beside it.
    assert [m["type"] for m in value["modules"]] == ["LayerNorm", "Linear", "ReLU", "Linear"]
    assert no_hooks_left()


ATTENTION = """
import torch
import torch.nn.functional as F

def shortcut(q, k, v):
    q, k, v = (torch.from_numpy(a) for a in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v).numpy()

def raises_after(q, k, v):
    torch.softmax(torch.from_numpy(q), -1)
    raise ValueError("later")
"""


def test_a_module_call_records_only_when_asked(tmp_path: Path) -> None:
    work, outbox, inbox = tmp_path / "work", tmp_path / "out", tmp_path / "in"
    work.mkdir()
    outbox.mkdir()
    (work / "attention.py").write_text(ATTENTION)
    q = np.random.default_rng(0).random((1, 3, 4))
    calls = [
        Call(id="plain", function="shortcut", args=(q, q, q)),
        Call(id="recorded", function="shortcut", args=(q, q, q), record_structure=True),
        Call(id="raised", function="raises_after", args=(q, q, q), record_structure=True),
    ]
    limits = ExecutionLimits(import_timeout=20, call_timeout=10, module_timeout=120)
    run = run_module(work / "attention.py", work, outbox, inbox, calls, limits)
    assert run.results["plain"].status == "ok" and run.results["plain"].structure is None
    done = run.results["recorded"]
    assert done.status == "ok" and done.structure is not None
    # from_numpy takes no tensor, so no torch function mode sees it
    assert done.structure["functions"] == {
        "torch.nn.functional.scaled_dot_product_attention": 1,
        "torch.Tensor.numpy": 1,
    }
    raised = run.results["raised"]
    assert raised.status == "error" and raised.structure is not None
    assert raised.structure["functions"] == {"torch.softmax": 1}
