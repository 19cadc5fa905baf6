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
    (record,) = load_records(graded / "results")
    assert report_html(record).count("asked for a GPU") == 1


def test_strict_devices_fail_the_answers_that_touch_the_device(tmp_path: Path) -> None:
    """``DeviceRequest(cuda_on_cpu=False)`` is what ``devices: strict`` asks for."""
    request = ExecutionRequest(
        files=SubmissionFiles(SAMPLE, ("hw3.ipynb",)),
        notebook=NotebookTask(
            "hw3.ipynb",
            harvest=tuple(
                AnswerRequest(n) for n in ("q2_O", "q3_total_params", "q6_params", "q4_model")
            ),
        ),
        frameworks=("numpy", "torch"),
        devices=DeviceRequest(cuda_on_cpu=False),
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
    """End to end once part A's data-set binding is merged (``ExecutionRequest.datasets``,
    bound read-only at ``/grader-data/NAME``, ``GRADER_DATASETS`` in the kernel): a
    notebook calling ``keras.datasets.mnist.load_data()`` runs offline from a tiny
    ``mnist.npz`` laid out as the data cache keeps it."""
    import dataclasses

    import nbformat
    import numpy as np

    from grader import sandbox

    if "datasets" not in {f.name for f in dataclasses.fields(ExecutionRequest)}:
        pytest.skip("needs part A's ExecutionRequest.datasets (issue 14, data sets bound)")
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
    bind = sandbox.DatasetBind("mnist", folder)  # type: ignore[attr-defined]
    request = ExecutionRequest(  # type: ignore[call-arg]
        files=SubmissionFiles(subs, ("hw.ipynb",)),
        notebook=NotebookTask("hw.ipynb", harvest=(AnswerRequest("labels"),)),
        datasets=(bind,),
        workroot=tmp_path,
    )
    run = execute(request).run
    assert run is not None and run.execution.failures == ()
    assert run.answers["labels"].value == [1, 2, 3, 9]
