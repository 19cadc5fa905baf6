"""The Keras adapter of the model probe, run in-process through the kernel harness.

Models are small Keras models written here; expected values are worked out by hand
(parameter counts from the layer sizes, shapes from the handout's layouts). The
TensorFlow backend runs in this process; the torch backend in a child process (a
backend is fixed when Keras is first imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from grader.harness import keras_adapter, kernel
from grader.models import AnswerRequest, ProbeSpec
from tests.harness.test_kernel import harvest

ROOT = Path(__file__).resolve().parents[2]


def probe(tmp_path: Path, model: object, shape: tuple[int, ...], **kw: Any) -> dict[str, Any]:
    spec = ProbeSpec(input_shape=shape, low=kw.pop("low", 0.0), high=kw.pop("high", 1.0))
    answer = harvest(tmp_path, {"m": model}, [AnswerRequest("m", "model", spec)])["m"]
    assert answer.status == "ok", answer.message
    value: dict[str, Any] = answer.value
    return value


def inception(keras: Any) -> Any:
    """Four branches concatenated on the channel axis, BatchNorm, softmax over 3."""
    layers = keras.layers
    inp = keras.Input((16, 16, 1))
    branches = [
        layers.Conv2D(4, 3, padding="same")(inp),  # 4*9 + 4 = 40
        layers.Conv2D(4, 5, padding="same")(inp),  # 4*25 + 4 = 104
        layers.Conv2D(4, 1, padding="same")(inp),  # 4 + 4 = 8
        layers.MaxPooling2D(3, strides=1, padding="same")(inp),  # 1 channel
    ]
    x = layers.Concatenate()(branches)  # 13 channels
    x = layers.BatchNormalization()(x)  # 13 gamma + 13 beta trainable, 26 moving stats
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(3, activation="softmax")(x)  # 13*3 + 3 = 42
    return keras.Model(inp, out)


def test_functional_channels_last_model(tmp_path: Path, tf_keras: Any) -> None:
    _, keras = tf_keras
    v = probe(tmp_path, inception(keras), (2, 1, 16, 16), high=255.0)
    assert v["framework"] == "keras" and v["channels_last"] is True
    assert v["ran"] is True and v["error"] is None
    assert v["output_shape"] == [2, 3]
    assert 0.0 <= v["output_min"] <= v["output_max"] <= 1.0 and v["output_finite"] is True
    assert v["trainable_params"] == 40 + 104 + 8 + 26 + 42
    assert v["non_trainable_params"] == 26  # Keras counts BN's moving mean and variance
    assert v["total_params"] == 40 + 104 + 8 + 26 + 42 + 26
    # the model's channel axis (last) is the handout's axis 1
    assert v["cat_calls"] == [
        {
            "n_inputs": 4,
            "dim": 1,
            "axis": -1,
            "shapes": [[2, 16, 16, 4], [2, 16, 16, 4], [2, 16, 16, 4], [2, 16, 16, 1]],
        }
    ]
    assert [m["type"] for m in v["modules"]] == [
        "Conv2D",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Concatenate",
        "BatchNormalization",
        "GlobalAveragePooling2D",
        "Dense",
    ]
    structure = v["structure"]
    assert structure["modules"]["keras.layers.Conv2D"] == 3
    assert structure["functions"] == {"keras.ops.concatenate": 1}
    assert structure["params"]["keras.layers.Conv2D"] == 40 + 104 + 8
    # the wrapper is gone after the probe
    assert "__call__" in vars(keras.layers.Layer)
    assert vars(keras.layers.Layer)["__call__"].__module__ == "keras.src.layers.layer"


def test_unbuilt_sequential_records_each_layer_once(tmp_path: Path, tf_keras: Any) -> None:
    _, keras = tf_keras
    layers = keras.layers
    model = keras.Sequential(
        [layers.Conv1D(16, 3), layers.MaxPooling1D(2), layers.Flatten(), layers.Dense(5)]
    )
    # HW3's table: (batch, 7 channels, 500 steps) in the handout, (500, 7) to Keras
    v = probe(tmp_path, model, (2, 7, 500))
    assert v["channels_last"] is True
    assert v["output_shape"] == [2, 5]
    assert v["trainable_params"] == (7 * 3 + 1) * 16 + (249 * 16 + 1) * 5
    assert v["modules"] == [
        {"name": "conv1d", "type": "Conv1D", "output_shape": [2, 498, 16]},
        {"name": "max_pooling1d", "type": "MaxPooling1D", "output_shape": [2, 249, 16]},
        {"name": "flatten", "type": "Flatten", "output_shape": [2, 3984]},
        {"name": "dense", "type": "Dense", "output_shape": [2, 5]},
    ] or [m["output_shape"] for m in v["modules"]] == [
        [2, 498, 16],
        [2, 249, 16],
        [2, 3984],
        [2, 5],
    ]


def test_output_is_compared_in_the_handouts_layout(tmp_path: Path, tf_keras: Any) -> None:
    tf, _ = tf_keras
    model = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), tf.keras.layers.Conv2D(5, 3)])
    v = probe(tmp_path, model, (2, 3, 8, 8))
    assert v["channels_last"] is True
    assert v["output_shape"] == [2, 5, 6, 6]  # channels first, as the torch reference


def test_a_model_declared_channels_first_gets_the_batch_as_given(
    tmp_path: Path, tf_keras: Any
) -> None:
    _, keras = tf_keras
    model = keras.Sequential(
        [keras.Input((1, 16, 16)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    v = probe(tmp_path, model, (2, 1, 16, 16))
    assert v["channels_last"] is False and v["output_shape"] == [2, 2]


def test_subclassed_model_and_its_concatenation(tmp_path: Path, tf_keras: Any) -> None:
    _, keras = tf_keras

    class Twice(keras.Model):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.a = keras.layers.Dense(2)
            self.b = keras.layers.Dense(3)

        def call(self, x: Any) -> Any:
            return keras.ops.concatenate([self.a(x), self.b(x)], axis=-1)

    v = probe(tmp_path, Twice(), (4, 6))
    assert v["output_shape"] == [4, 5]
    assert v["cat_calls"] == [{"n_inputs": 2, "dim": 1, "axis": -1, "shapes": [[4, 2], [4, 3]]}]
    assert v["trainable_params"] == 6 * 2 + 2 + 6 * 3 + 3
    assert [m["type"] for m in v["modules"]] == ["Dense", "Dense"]


def test_failing_keras_model(tmp_path: Path, tf_keras: Any) -> None:
    _, keras = tf_keras

    class Broken(keras.Model):  # type: ignore[misc,name-defined]
        def call(self, x: Any) -> Any:
            raise ValueError("boom")

    v = probe(tmp_path, Broken(), (1, 2))
    assert v["ran"] is False
    assert v["error"].startswith("ValueError: ") and "boom" in v["error"]
    assert 'raise ValueError("boom")' in v["traceback"]


def test_keras_of_ignores_torch_modules_and_plain_objects(tf_keras: Any) -> None:
    import torch

    _, keras = tf_keras
    assert keras_adapter.keras_of(torch.nn.Linear(2, 2)) is None
    assert keras_adapter.keras_of([1]) is None
    assert keras_adapter.keras_of(keras.layers.Dense(2)) is keras
    assert kernel._keras() is keras_adapter


_TORCH_BACKEND = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "torch"
import keras, torch
from grader.harness import kernel
model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                          keras.layers.Flatten(), keras.layers.Dense(4, activation="sigmoid")])
status, message, v = kernel._probe_model("m", model, {"input_shape": [3, 1, 8, 8]})
print(json.dumps({"backend": keras.backend.backend(),
                  "is_module": isinstance(model, torch.nn.Module), "status": status,
                  "framework": v["framework"], "shape": v["output_shape"],
                  "params": v["trainable_params"], "cl": v["channels_last"],
                  "types": [m["type"] for m in v["modules"]]}))
"""


def test_keras_on_the_torch_backend_goes_through_the_keras_adapter() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-c", _TORCH_BACKEND],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {
        "backend": "torch",
        "is_module": True,
        "status": "ok",
        "framework": "keras",
        "shape": [3, 4],
        "params": (9 + 1) * 2 + (6 * 6 * 2 + 1) * 4,
        "cl": True,
        "types": ["Conv2D", "Flatten", "Dense"],
    }


def test_probe_input_follows_the_spec() -> None:
    x = keras_adapter._probe_input({"low": 0, "high": 255, "seed": 0}, [2, 3])
    assert x.shape == (2, 3) and x.dtype == np.float32
    assert float(x.min()) >= 0 and float(x.max()) < 255
