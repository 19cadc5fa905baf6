"""The habit shims (:mod:`grader.harness.shims`) in a real kernel: CUDA requests on a
CPU-only torch, ``google.colab``, ``!pip install``, ``%cd``, Keras data sets offline."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.harness import shims
from grader.models import AnswerRequest, NotebookRun
from grader.sandbox import ExecutionLimits
from grader.sandbox.kernel_client import habit_notes, read_habit_notes
from grader.sandbox.notebook import run_notebook

LIMITS = ExecutionLimits(
    cell_timeout=60, interrupt_grace=2, harvest_timeout=30, notebook_timeout=300
)


def run(
    tmp_path: Path,
    cells: list[str],
    names: list[str],
    *,
    cuda_on_cpu: bool = True,
    env: dict[str, str] | None = None,
) -> NotebookRun:
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]  # type: ignore[no-untyped-call]
    work, outbox = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    outbox.mkdir()
    path = tmp_path / "hw.ipynb"
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return run_notebook(
        path,
        work,
        outbox,
        [AnswerRequest(n) for n in names],
        LIMITS,
        env=env,
        cuda_on_cpu=cuda_on_cpu,
    )


CUDA_CELLS = [
    "import torch\ndevice = torch.device('cuda')\nok_device = isinstance(device, torch.device)",
    "print(torch.cuda.get_device_name(0)); torch.cuda.set_device(0)\n"
    "torch.cuda.reset_peak_memory_stats()\n"
    "with torch.cuda.device(0):\n    pass\n"
    "torch.cuda.manual_seed(0); torch.cuda.manual_seed_all(0)\n"
    "torch.backends.cudnn.benchmark = True; torch.backends.cudnn.deterministic = True",
    "model = torch.nn.Linear(3, 2).to(device)\nmodel = model.cuda()\n"
    "x = torch.ones(4, 3, device='cuda:0').to(device, non_blocking=True)\n"
    "w = torch.zeros(2, device=device)\n"
    "scaler = torch.cuda.amp.GradScaler()\n"
    "with torch.autocast('cuda'):\n    y = model(x)\n"
    "out = (y + w).detach().cpu().numpy()\n"
    "torch.cuda.synchronize()\n"
    "torch.save(model.state_dict(), 'm.pt')\n"
    "sd = torch.load('m.pt')\n"
    "available = torch.cuda.is_available()\n"
    "on = str(x.device)",
]


def test_cuda_requests_run_on_the_cpu_and_are_noted_once(tmp_path: Path) -> None:
    r = run(tmp_path, CUDA_CELLS, ["ok_device", "out", "available", "on"])
    assert r.execution.failures == ()
    assert r.answers["ok_device"].value is True
    assert r.answers["available"].value is False
    assert r.answers["on"].value == "cpu"
    assert np.asarray(r.answers["out"].value).shape == (4, 2)
    gpu = [w for w in r.execution.warnings if "asked for a GPU" in w]
    assert len(gpu) == 1
    assert "it ran on the CPU" in gpu[0]
    assert ".to('cuda')" in gpu[0] and ".cuda()" in gpu[0] and "device='cuda'" in gpu[0]
    notes = read_habit_notes(tmp_path / "out")
    # .to(device) twice, .cuda() once, device= twice (ones, zeros), in the cells above.
    assert notes["cuda_requested_on_cpu"]["count"] == 5


def test_strict_lets_cuda_requests_fail(tmp_path: Path) -> None:
    r = run(tmp_path, CUDA_CELLS, ["ok_device", "out"], cuda_on_cpu=False)
    # cell 2 asks for the GPU's name, cell 3 moves the model: both fail as on any CPU
    assert [f.cell for f in r.execution.failures] == [2, 3]
    assert r.answers["ok_device"].value is True
    assert r.answers["out"].status == "error"
    assert not any("asked for a GPU" in w for w in r.execution.warnings)


def test_gpu_checkpoint_loads_on_the_cpu(tmp_path: Path) -> None:
    # A checkpoint whose storages say cuda:0, as one saved on a GPU: the location
    # strings (pickle BINUNICODE, length-prefixed) are rewritten as a GPU save has them.
    cells = [
        "import torch, io, pickle\n"
        "torch.save({'w': torch.arange(3.0)}, 'cpu.pt')\n"
        "import zipfile\n"
        "src = zipfile.ZipFile('cpu.pt')\n"
        "dst = zipfile.ZipFile('gpu.pt', 'w')\n"
        "for item in src.infolist():\n"
        "    data = src.read(item.filename)\n"
        "    if item.filename.endswith('data.pkl'):\n"
        "        data = data.replace(b'X\\x03\\x00\\x00\\x00cpu', b'X\\x06\\x00\\x00\\x00cuda:0')\n"
        "    dst.writestr(item, data)\n"
        "dst.close()",
        "w = torch.load('gpu.pt')['w'].numpy()",
    ]
    r = run(tmp_path, cells, ["w"])
    assert r.execution.failures == ()
    assert list(r.answers["w"].value) == [0.0, 1.0, 2.0]
    assert any("torch.load of a GPU checkpoint" in w for w in r.execution.warnings)


def test_colab_pip_and_cd_habits_do_not_stop_the_notebook(tmp_path: Path) -> None:
    cells = [
        "from google.colab import drive, files, output\n"
        "drive.mount('/content/drive')\nuploaded = files.upload()\noutput.clear()",
        "!pip install -q numpy\nquiet = _exit_code",
        "!pip install not-a-package==1.0\nmissing = _exit_code\nafter = 'ran'",
        "%pip install numpy",
        "%cd /content/drive/MyDrive/hw3\nstill = 1",
    ]
    r = run(tmp_path, cells, ["uploaded", "quiet", "missing", "after", "still"])
    assert r.execution.failures == ()
    assert r.answers["uploaded"].value == {}
    assert r.answers["quiet"].value == 0
    assert r.answers["missing"].value == 1
    assert r.answers["after"].value == "ran"
    assert r.answers["still"].value == 1
    assert "while grading: pip install not-a-package: not installed" in r.execution.warnings
    assert any("%cd /content/drive/MyDrive/hw3" in w for w in r.execution.warnings)
    assert not any("GPU" in w for w in r.execution.warnings)


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("pip install numpy", ["numpy"]),
        ("pip3 install -q -U torch==2.0 'scikit-learn[all]>=1'", ["torch", "scikit-learn"]),
        ('"/v/bin/python" -m pip install --index-url http://x pandas', ["pandas"]),
        ("ls -la", None),
        ("pip list", None),
    ],
)
def test_pip_packages(command: str, names: list[str] | None) -> None:
    assert shims.pip_packages(command) == names


def test_notes_file_is_read_as_untrusted_data(tmp_path: Path) -> None:
    (tmp_path / shims.NOTES_FILE).write_text(
        json.dumps({"cuda_requested_on_cpu": {"count": "many", "examples": []}, "shell": [1]})
    )
    assert read_habit_notes(tmp_path) == {}
    assert habit_notes(tmp_path) == ()
    (tmp_path / shims.NOTES_FILE).write_text("[")
    assert habit_notes(tmp_path) == ()


def _tiny_mnist(folder: Path) -> None:
    (folder / "data").mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(
        folder / "data" / "mnist.npz",
        x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        y_train=np.arange(6, dtype=np.uint8),
        x_test=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        y_test=np.array([7, 8], dtype=np.uint8),
    )


def test_keras_mnist_loads_offline_from_a_named_set(tmp_path: Path) -> None:
    """Without the sandbox, standing in for part A's binding: ``GRADER_DATASETS`` points
    at a folder laid out as the data cache keeps a set."""
    _tiny_mnist(tmp_path / "mnist")
    (tmp_path / "openml" / "data" / "scikit_learn_data").mkdir(parents=True)
    sets = {"mnist": str(tmp_path / "mnist"), "openml": str(tmp_path / "openml")}
    env = {"GRADER_DATASETS": json.dumps(sets)}
    cells = [
        "import os\nos.environ['KERAS_BACKEND'] = 'torch'\n"
        "import keras\n(xtr, ytr), (xte, yte) = keras.datasets.mnist.load_data()\n"
        "shape = list(xtr.shape); labels = [int(v) for v in yte]",
        "try:\n    keras.datasets.cifar10.load_data()\nexcept Exception as e:\n    why = str(e)",
        "from sklearn.datasets import get_data_home\nhome = get_data_home()",
    ]
    r = run(tmp_path, cells, ["shape", "labels", "why", "home"], env=env)
    assert r.execution.failures == ()
    assert r.answers["shape"].value == [6, 28, 28]
    assert r.answers["labels"].value == [7, 8]
    assert "no network" in r.answers["why"].value
    assert "this assignment provides: mnist, openml" in r.answers["why"].value
    assert r.answers["home"].value == str(tmp_path / "openml" / "data" / "scikit_learn_data")


def test_tf_keras_mnist_loads_offline(tmp_path: Path) -> None:
    """``tf.keras`` (Keras 3 behind TensorFlow's lazy attribute) goes through the same
    download step."""
    _tiny_mnist(tmp_path / "mnist")
    env = {"GRADER_DATASETS": json.dumps({"mnist": str(tmp_path / "mnist")})}
    cells = [
        "import tensorflow as tf\n"
        "(xtr, ytr), (xte, yte) = tf.keras.datasets.mnist.load_data()\n"
        "labels = [int(v) for v in ytr]",
    ]
    r = run(tmp_path, cells, ["labels"], env=env)
    assert r.execution.failures == ()
    assert r.answers["labels"].value == [0, 1, 2, 3, 4, 5]


def test_cuda_shim_in_a_warm_kernel_with_torch_preloaded(tmp_path: Path) -> None:
    """A warm template imported torch before the harness ran: the shim patches it at
    set-up instead of on import."""
    from grader.sandbox.stages import notebook_in_session

    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    cells = ["import sys\npreloaded = 'torch' in sys.modules", *CUDA_CELLS]
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]  # type: ignore[no-untyped-call]
    work, outbox = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    outbox.mkdir()
    nbformat.write(nb, work / "hw.ipynb")  # type: ignore[no-untyped-call]
    run, _ = notebook_in_session(
        work / "hw.ipynb",
        work,
        outbox,
        [AnswerRequest("preloaded"), AnswerRequest("out")],
        LIMITS,
        "strict",
        frameworks=("numpy", "torch"),
        warm=True,
    )
    assert run.answers["preloaded"].value is True
    assert run.execution.failures == ()
    assert np.asarray(run.answers["out"].value).shape == (4, 2)
    assert sum("asked for a GPU" in w for w in run.execution.warnings) == 1
