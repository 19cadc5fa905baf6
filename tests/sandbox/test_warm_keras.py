"""Warm kernels with TensorFlow preloaded (issue 15): a student's KERAS_BACKEND is still
honoured, TensorFlow is seeded like NumPy and torch, its thread pools are limited, and a
Keras model answer is probed. Needs root, bubblewrap and a writable cgroup, as in CI."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grader.models import AnswerRequest, NotebookRun, ProbeSpec
from grader.pipeline import execution_limits
from grader.rubric import Rubric, load_rubric
from grader.sandbox import confine, warm
from grader.sandbox.protections import detect_protections
from grader.sandbox.stages import notebook_in_session
from grader.sandbox.warm_or_cold import preloaded_for

needs_warm = pytest.mark.skipif(
    os.geteuid() != 0 or not detect_protections().complete,
    reason="warm starts need root, bubblewrap and a writable cgroup (as in CI)",
)

TIMES = {"cell_timeout": 60, "interrupt_grace": 3, "harvest_timeout": 60}
WARM = "warm = open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1] == b'-c'"

TORCH_BACKEND = [
    WARM,
    """
import os, sys
preloaded_tf = "tensorflow" in sys.modules
keras_before = "keras" in sys.modules
os.environ["KERAS_BACKEND"] = "torch"
import keras
backend = keras.backend.backend()
model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                          keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
""",
]

TF_DEFAULT = [
    WARM,
    """
import os
import tensorflow as tf
from tensorflow import keras
backend = keras.backend.backend()
draw = float(tf.random.uniform(()))
x = tf.matmul(tf.ones((64, 64)), tf.ones((64, 64)))
threads = len(os.listdir("/proc/self/task"))
pools = [os.environ.get("TF_NUM_INTRAOP_THREADS"), os.environ.get("TF_NUM_INTEROP_THREADS")]
shape = tf.TensorShape([None, 498, 16])
var = tf.Variable([1.0, 2.0])
""",
]


@pytest.fixture(scope="module")
def rubric() -> Iterator[Rubric]:
    base = load_rubric("hw3")
    yield dataclasses.replace(base, frameworks=("numpy", "torch", "tensorflow"))
    warm.close_thread_template()


def run(
    tmp_path: Path,
    rubric: Rubric,
    name: str,
    cells: list[str],
    requests: list[AnswerRequest],
    *,
    use_warm: bool = True,
) -> NotebookRun:
    root = tmp_path / name
    work, outbox = root / "work", root / "outbox"
    work.mkdir(parents=True)
    outbox.mkdir()
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]  # type: ignore[no-untyped-call]
    path = work / "hw3.ipynb"
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    limits = execution_limits(rubric).model_copy(update=TIMES)
    result, _ = notebook_in_session(
        path,
        work,
        outbox,
        requests,
        limits,
        "strict",
        frameworks=rubric.frameworks,
        warm=use_warm,
    )
    return result


def values(result: NotebookRun) -> dict[str, Any]:
    bad = {n: a.message for n, a in result.answers.items() if a.status != "ok"}
    assert not bad, (bad, result.execution.failures)
    return {n: a.value for n, a in result.answers.items()}


def test_tensorflow_is_preloaded_only_for_code_that_mentions_it(tmp_path: Path) -> None:
    declared = ("numpy", "torch", "tensorflow")
    torch_only = tmp_path / "torch"
    (torch_only / "sub").mkdir(parents=True)
    (torch_only / "hw3.ipynb").write_text('{"cells": ["import torch  # tf-idf, tfidf"]}')
    (torch_only / "sub" / "notes.txt").write_text("import tensorflow")  # not code
    os.symlink("/work/nonexistent/keras.py", torch_only / "link.py")
    os.mkfifo(torch_only / "pipe.py")  # never opened for reading: it would block
    assert preloaded_for(declared, torch_only) == ("numpy", "torch")
    for source in ("import tensorflow as tf", "from tensorflow import keras", "import keras"):
        keras_dir = tmp_path / str(abs(hash(source)))
        (keras_dir / "pkg").mkdir(parents=True)
        (keras_dir / "pkg" / "model.py").write_text(source)
        assert preloaded_for(declared, keras_dir) == declared
    assert preloaded_for(("numpy", "torch"), torch_only) == ("numpy", "torch")


@needs_warm
def test_template_preloads_tensorflow_but_not_keras(rubric: Rubric) -> None:
    modules = warm.preload(rubric.frameworks)
    assert "tensorflow" in modules and "keras" not in modules
    limits = execution_limits(rubric)
    assert warm.thread_template(modules, limits, confine.extra_env()) is not None


@needs_warm
def test_a_torch_notebook_keeps_the_torch_template(tmp_path: Path, rubric: Rubric) -> None:
    # the module's name is spelt in two halves: the notebook must not mention it
    cells = [WARM, "import sys, torch\ntf_loaded = 'tensor' + 'flow' in sys.modules"]
    names = [AnswerRequest("warm"), AnswerRequest("tf_loaded")]
    got = values(run(tmp_path, rubric, "torch_only", cells, names))
    assert got == {"warm": True, "tf_loaded": False}
    # and a TensorFlow notebook right after gets its own template, the torch one kept
    got_tf = values(run(tmp_path, rubric, "tf_after", TF_DEFAULT, [AnswerRequest("warm")]))
    assert got_tf == {"warm": True}
    assert len(warm._thread_templates()) == 2


@needs_warm
def test_students_keras_backend_is_honoured_and_the_model_probed(
    tmp_path: Path, rubric: Rubric
) -> None:
    probe = ProbeSpec(input_shape=(2, 1, 8, 8))
    requests = [AnswerRequest(n) for n in ("warm", "preloaded_tf", "keras_before", "backend")] + [
        AnswerRequest("model", "model", probe)
    ]
    got = values(run(tmp_path, rubric, "torch", TORCH_BACKEND, requests))
    assert got["warm"] is True and got["preloaded_tf"] is True
    assert got["keras_before"] is False  # the template forgot the Keras TF loaded
    assert got["backend"] == "torch"
    m = got["model"]
    assert m["framework"] == "keras" and m["ran"] is True
    assert m["output_shape"] == [2, 3] and m["trainable_params"] == (9 + 1) * 2 + (72 + 1) * 3


@needs_warm
def test_tensorflow_is_seeded_threads_limited_and_values_read(
    tmp_path: Path, rubric: Rubric
) -> None:
    names = ["warm", "backend", "draw", "threads", "pools", "shape", "var"]
    warm_run = values(run(tmp_path, rubric, "tf", TF_DEFAULT, [AnswerRequest(n) for n in names]))
    cold_run = values(
        run(tmp_path, rubric, "cold", TF_DEFAULT, [AnswerRequest(n) for n in names], use_warm=False)
    )
    assert warm_run["warm"] is True and cold_run["warm"] is False
    assert warm_run["backend"] == "tensorflow"
    assert warm_run["draw"] == cold_run["draw"]  # the kernel seed, warm or cold
    assert warm_run["shape"] == [None, 498, 16]
    assert warm_run["var"].tolist() == [1.0, 2.0]
    limits = execution_limits(rubric)
    cores = str(max(1, int(limits.cpu_cores)))
    # TensorFlow's pools are sized like torch's OpenMP pool, well inside the pids limit
    assert warm_run["pools"] == cold_run["pools"] == [cores, cores]
    assert warm_run["threads"] < limits.processes


def test_setup_ships_the_keras_adapter_only_for_notebooks_mentioning_keras() -> None:
    from grader.sandbox.kernel_client import setup_code

    def code(keras: bool) -> str:
        return setup_code(
            Path("/out"), 0, seed_torch=True, keras=keras, max_answer_bytes=1, harvest_timeout=1
        )

    assert "def plain_tuner" in code(True) and "def plain_tuner" not in code(False)
