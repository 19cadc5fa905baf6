"""Golden tests of issue 14's habits (part B): the HW3 notebook written for a Colab GPU
(``submissions/hw3/colab_gpu``, from ``tests/golden/make_habit_samples.py``) graded on
this CPU-only machine earns the points written by hand in
``tests/golden/hw3/colab_gpu.yaml``, its result and report say once that it asked for a
GPU and ran on the CPU; with CUDA-on-CPU turned off (``devices: strict``) the answers
that touch the device fail, as they did before.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.cli import main
from grader.models import AnswerRequest
from grader.report.render import load_records, report_html
from grader.sandbox import DeviceRequest, ExecutionRequest, NotebookTask, SubmissionFiles, execute
from tests.golden.support import ROOT, golden_mismatches, load_golden, result

SAMPLE = ROOT / "submissions" / "hw3" / "colab_gpu"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("habits")
    shutil.copytree(SAMPLE, base / "subs" / "colab_gpu")
    out = base / "out"
    argv = [str(base / "subs"), "--rubric", "hw3", "--out", str(out), "--jobs", "1"]
    assert main([*argv, "--no-reports"]) == 0
    return out


def test_colab_gpu_notebook_earns_every_automatic_point_on_the_cpu(graded: Path) -> None:
    assert golden_mismatches(graded, load_golden("hw3")["colab_gpu"]) == {}


def test_result_and_report_say_once_it_ran_on_the_cpu(graded: Path) -> None:
    warnings = result(graded, "colab_gpu")["execution"]["warnings"]
    gpu = [w for w in warnings if "asked for a GPU" in w]
    assert len(gpu) == 1 and "it ran on the CPU" in gpu[0]
    assert ".to('cuda')" in gpu[0] and ".cuda()" in gpu[0] and "device='cuda'" in gpu[0]
    assert any("%cd /content/drive/MyDrive/DL/hw3" in w for w in warnings)
    # the installed packages of `!pip install -q torch numpy` were skipped quietly
    assert not any("pip install" in w for w in warnings)
    devices = result(graded, "colab_gpu")["devices"]
    assert devices["kind"] == "cpu"
    # Q2: X and F (device=); q4: .to(device) and the autocast batch (device=); q7:
    # .cuda() and one .to(device); the harvest's probes call no .to of their own.
    assert devices["cuda_requested_on_cpu"]["count"] >= 6
    (record,) = load_records(graded / "results")
    assert report_html(record).count("asked for a GPU") == 1


def test_strict_devices_fail_the_answers_that_touch_the_device(tmp_path: Path) -> None:
    """``DeviceRequest(policy="strict")`` is what ``devices: strict`` asks for."""
    request = ExecutionRequest(
        files=SubmissionFiles(SAMPLE, ("hw3.ipynb",)),
        notebook=NotebookTask(
            "hw3.ipynb",
            harvest=tuple(
                AnswerRequest(n) for n in ("q2_O", "q3_total_params", "q6_params", "q4_model")
            ),
        ),
        frameworks=("numpy", "torch"),
        devices=DeviceRequest(policy="strict"),
        workroot=tmp_path,
    )
    run = execute(request).run
    assert run is not None
    answers = run.answers
    assert answers["q2_O"].status == "error"  # its tensors are created on the device
    assert answers["q4_model"].status == "error"  # moved with .to(device)
    assert answers["q3_total_params"].status == "ok"  # no device in Q3 and Q6
    assert answers["q6_params"].status == "ok"
    assert not any("asked for a GPU" in w for w in run.execution.warnings)


def test_keras_mnist_offline_from_the_bound_data_set(tmp_path: Path) -> None:
    """End to end with part A's binding (``ExecutionRequest.datasets``, bound read-only
    at ``/grader-data/NAME``, ``GRADER_DATASETS`` in the kernel): a notebook calling
    ``keras.datasets.mnist.load_data()`` runs offline from a tiny ``mnist.npz`` laid out
    as the data cache keeps it."""
    import nbformat
    import numpy as np

    from grader import sandbox

    folder = tmp_path / "cache" / "mnist"
    (folder / "data").mkdir(parents=True)
    np.savez(
        folder / "data" / "mnist.npz",
        x_train=np.zeros((3, 28, 28), np.uint8),
        y_train=np.array([1, 2, 3], np.uint8),
        x_test=np.zeros((1, 28, 28), np.uint8),
        y_test=np.array([9], np.uint8),
    )
    subs = tmp_path / "sub"
    subs.mkdir()
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [
        nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
            "import os\nos.environ['KERAS_BACKEND'] = 'torch'\nimport keras\n"
            "(xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()\n"
            "labels = [int(v) for v in ytr] + [int(v) for v in yte]"
        )
    ]
    nbformat.write(nb, subs / "hw.ipynb")  # type: ignore[no-untyped-call]
    bind = sandbox.DatasetBind("mnist", folder)
    request = ExecutionRequest(
        files=SubmissionFiles(subs, ("hw.ipynb",)),
        notebook=NotebookTask("hw.ipynb", harvest=(AnswerRequest("labels"),)),
        datasets=(bind,),
        workroot=tmp_path,
    )
    run = execute(request).run
    assert run is not None and run.execution.failures == ()
    assert run.answers["labels"].value == [1, 2, 3, 9]


def test_devices_strict_rubric_loses_the_device_touching_points(tmp_path: Path) -> None:
    """hw3's rubric with ``devices: strict``: the preamble asks for nothing that fails
    on the CPU except the moves and device= tensors, so by hand from colab_gpu.yaml:
    Q2's four values (20 points) error (their tensors are created with device=device);
    q4_model (16) errors (.to(device)); q7_model (10) errors (.cuda()); q3 (18 + 2) and
    q6 (2 + 2) never touch the device and pass; the written answers are marked as
    before (24 manual points): 90 - 20 - 16 - 10 = 44."""
    rubric = (ROOT / "rubrics" / "hw3.yaml").read_text(encoding="utf-8")
    assert "\ndevices:" not in rubric
    folder = tmp_path / "rubric"
    shutil.copytree(ROOT / "rubrics", folder)
    (folder / "hw3.yaml").write_text(rubric + "\ndevices: strict\n", encoding="utf-8")
    shutil.copytree(SAMPLE, tmp_path / "subs" / "colab_gpu")
    out = tmp_path / "out"
    argv = [str(tmp_path / "subs"), "--rubric", str(folder / "hw3.yaml"), "--out", str(out)]
    assert main([*argv, "--no-reports", "--jobs", "1"]) == 0
    record = result(out, "colab_gpu")
    got = {c["id"]: (c["score"], c["status"]) for q in record["questions"] for c in q["checks"]}
    for cid in ("q2_O", "q2_G", "q2_dL_dX", "q2_dL_dF", "q4_model", "q7_model"):
        assert got[cid] == (0, "error"), cid
    assert got["q3_table"] == (18, "pass") and got["q6_params"] == (2, "pass")
    assert record["score"] == 44
