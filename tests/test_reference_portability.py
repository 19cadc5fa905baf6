"""Expected values are computed in a child process with pinned numerics
(``grader.reference.PIN``), so machines of the same kind agree on them.

* The child really runs pinned (torch's portable kernels, one thread, no oneDNN or
  NNPACK, MKL's reproducible branch), prints cannot corrupt its reply, and every failure
  is a ``ReferenceComputationError`` naming the file (and the check).
* HW4-B, the reference whose numbers move most with the CPU (60 re-trainings): the pinned
  computation is bit-for-bit repeatable, and the verdict on every figure the sample
  submissions report is the same under the pinned bands as under bands computed with
  ATen's AVX2 kernels (what a grader pinned to another instruction set computes). The
  second set is pinned too (AVX2, the rest of ``PIN``), so the comparison gives the same
  numbers on every x86-64 machine with AVX2, not whatever this machine's own kernels are.
  The three HW4-B computations take about 50 s on one core, once for the module.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import grader.reference
from grader.checks.claim import ClaimSpec, grade_claim
from grader.errors import ReferenceComputationError
from grader.reference import PIN, Pin, compute_values, load_expected, reference_path
from grader.rubric import load_rubric
from reference import hw4b
from tests.conftest import make_ctx

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "submissions" / "hw4b"

# --------------------------------------------------------------- a reference of our own

RUBRIC = """\
assignment: t
title: T
reference: ref.py
notebook: t.ipynb
questions:
  - id: q1
    checks:
      - {id: x, type: value, answer: x, points: 1}
"""
SEARCH = """\
      - {id: s, type: search, answer: trials, best: best, search: nowhere,
         points: {space: 1}}
"""


# Reports how the child is set up, and prints on stdout at import and in compute().
PINNED_PROBE = """\
import os
import numpy as np
import torch
from grader.reference import PIN
print("noise on stdout")
def compute():
    print("more noise", flush=True)
    os.write(1, b"raw noise")
    return {"x": np.arange(3.0), "shape": (2, 3),
            "capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.enabled,
            "nnpack": torch._C._get_nnpack_enabled(),
            "env": {k: os.environ.get(k) for k in PIN.env}}
"""


def make_reference(tmp_path: Path, source: str, extra_checks: str = "") -> tuple[Path, Path]:
    """A rubric whose reference is ``source``; returns (rubric, reference) paths."""
    (tmp_path / "ref.py").write_text(source)
    (tmp_path / "rubric.yaml").write_text(RUBRIC + extra_checks)
    return tmp_path / "rubric.yaml", tmp_path / "ref.py"


def test_the_child_runs_pinned_and_its_prints_stay_out_of_the_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")  # the grader's own is overridden
    rubric, _ = make_reference(tmp_path, PINNED_PROBE)
    values = load_expected(load_rubric(rubric)).values
    assert values["x"].tolist() == [0.0, 1.0, 2.0] and values["shape"] == (2, 3)
    assert values["capability"] == "DEFAULT" == PIN.capability
    assert values["threads"] == PIN.num_threads == 1
    assert (values["mkldnn"], values["nnpack"]) == (PIN.mkldnn, PIN.nnpack) == (False, False)
    assert values["env"] == dict(PIN.env)


def test_the_pin_is_part_of_the_reference_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ref = make_reference(tmp_path, "def compute():\n    return {}\n")
    before = grader.reference.reference_hash(ref)
    other = Pin(env={**PIN.env, "ATEN_CPU_CAPABILITY": "avx2"}, capability="AVX2")
    monkeypatch.setattr(grader.reference, "PIN", other)
    assert grader.reference.reference_hash(ref) != before


def test_the_architecture_is_part_of_the_reference_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pin makes machines of one architecture agree, not x86-64 and aarch64."""
    _, ref = make_reference(tmp_path, "def compute():\n    return {}\n")
    monkeypatch.setattr(grader.reference.platform, "machine", lambda: "x86_64")
    x86 = grader.reference.reference_hash(ref)
    monkeypatch.setattr(grader.reference.platform, "machine", lambda: "aarch64")
    assert grader.reference.reference_hash(ref) != x86


@pytest.mark.parametrize(
    ("source", "extra", "message"),
    [
        (
            "def compute():\n    return 1 / 0\n",
            "",
            "compute() failed: ZeroDivisionError: division by zero",
        ),
        ("X = 1\n", "", "compute() failed: AttributeError: "),
        ("def compute():\n    return [1]\n", "", "compute() must return a dict"),
        (
            "def compute():\n    return {'x': 1}\n",
            SEARCH,
            "computing the expected values of check 's' failed: ValueError: the reference "
            "module has no function 'nowhere'",
        ),
        (
            "def compute():\n    return {'y': 1}\n",
            "",
            "compute() returned no value for x (needed by rubric.yaml)",
        ),
        (
            "import os, sys\ndef compute():\n    sys.stderr.write('dying\\n')\n"
            "    sys.stderr.flush()\n    os._exit(3)\n",
            "",
            "the process computing the expected values ended with status 3: dying",
        ),
    ],
    ids=["raises", "no-compute", "not-a-dict", "check-fails", "missing-key", "child-dies"],
)
def test_reference_failures_name_the_file_and_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, extra: str, message: str
) -> None:
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    rubric, ref = make_reference(tmp_path, source, extra)
    with pytest.raises(ReferenceComputationError) as caught:
        load_expected(load_rubric(rubric), use_cache=False)
    assert str(caught.value).startswith(f"{ref}: ")
    assert message in str(caught.value)


# ------------------------------------------------------------------ HW4-B, two ways


def native_capability() -> str:
    """What torch picks on this machine when nothing pins it."""
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


#: The second kernel set: ATen's AVX2 build with the rest of the pin. Pinned as well, so
#: the test asserts the same numbers on any machine with AVX2 (a comparison with this
#: machine's own kernels would depend on its CPU, AVX2 or AVX-512, oneDNN's choices).
AVX2 = Pin(env={**PIN.env, "ATEN_CPU_CAPABILITY": "avx2"}, capability="AVX2")


@pytest.fixture(scope="module")
def hw4b_values() -> dict[str, dict[str, Any]]:
    """HW4-B's expected values: pinned twice, and with ATen's AVX2 kernels."""
    if native_capability() == "DEFAULT":
        pytest.skip("this CPU has no AVX2: there is no second kernel set to compare with")
    rubric = load_rubric("hw4b")
    path = reference_path(rubric)
    return {
        "pinned": compute_values(path, rubric),
        "pinned again": compute_values(path, rubric),
        "AVX2": compute_values(path, rubric, AVX2),
    }


def band_checks() -> list[ClaimSpec]:
    return [c for c in load_rubric("hw4b").checks() if isinstance(c, ClaimSpec) and c.k is not None]


def reported_figures(notebook: Path, other: Mapping[str, Any]) -> dict[str, float]:
    """The figures a sample reports, by name, read without running anything: literal
    pairs (``a_loss, a_accuracy = 0.69, 0.77``) as written; ``train_cnn(...)`` as the
    handout's trainer gives them with seed 0 (the reference's trainer is the handout's,
    bit for bit: test_reference_hw4b), i.e. the other kernel set's seed-0 runs. A call
    the trainer rejects (``batchnorm=True``) raises in the notebook and reports nothing."""
    cells = json.loads(notebook.read_text())["cells"]
    found: dict[str, float] = {}
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for node in ast.parse(source).body:
            if not (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Tuple)
            ):
                continue
            names = [t.id for t in node.targets[0].elts if isinstance(t, ast.Name)]
            call = node.value
            if isinstance(node.value, ast.Tuple):
                found.update(zip(names, map(ast.literal_eval, node.value.elts), strict=True))
            elif (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "train_cnn"
            ):
                settings = {**hw4b.BASELINE}
                settings.update({k.arg: ast.literal_eval(k.value) for k in call.keywords})
                config = next((n for n, c in hw4b.CONFIGS.items() if c == settings), None)
                if config is None:
                    continue  # TypeError in the notebook
                for name, figure in zip(names, ("loss", "accuracy"), strict=True):
                    runs = other[f"{hw4b.QUESTION[config]}_{config}_{figure}"]
                    found[name] = runs["runs"][runs["seeds"].index(0)]
    return found


def test_pinned_reference_is_bit_for_bit_repeatable(
    hw4b_values: dict[str, dict[str, Any]],
) -> None:
    assert hw4b_values["pinned"] == hw4b_values["pinned again"]
    # ... and the second kernel set really is another: its re-trainings differ.
    assert hw4b_values["AVX2"] != hw4b_values["pinned"]


def test_every_samples_verdict_is_the_same_under_default_and_avx2_bands(
    hw4b_values: dict[str, dict[str, Any]],
) -> None:
    pinned = hw4b_values["pinned"]
    avx2 = hw4b_values["AVX2"]
    verdicts: dict[tuple[str, str], tuple[str, str]] = {}
    for sample in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        figures = reported_figures(sample / "hw4b.ipynb", avx2)
        for spec in band_checks():
            assert spec.claim is not None
            if spec.claim not in figures:
                assert sample.name == "notebook_error", (sample.name, spec.claim)
                continue
            answers = {spec.claim: figures[spec.claim]}
            verdicts[sample.name, spec.id] = (
                grade_claim(spec, make_ctx(answers, pinned)).status,
                grade_claim(spec, make_ctx(answers, avx2)).status,
            )
    assert len(verdicts) == 6 * 12 - 2  # every figure but notebook_error's batch norm
    # Teeth: the samples hold made-up and swapped figures that fail as well as honest ones.
    assert {p for p, _ in verdicts.values()} == {"pass", "fail"}
    disagree = {key: v for key, v in verdicts.items() if v[0] != v[1]}
    assert not disagree, f"default vs AVX2 verdicts differ: {disagree}"
