"""The grader's data cache and ``grade data``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grader import datasets
from grader.cli import main
from grader.datasets import DatasetError


def mnist_npz(path: Path) -> Path:
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.arange(3, dtype=np.uint8))
    return path


def test_a_file_is_kept_under_its_name_with_a_manifest(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    found = datasets.add("mnist", mnist_npz(tmp_path / "mnist.npz"), cache)
    assert found.folder == cache / "mnist" / "data"
    assert sorted(p.name for p in found.folder.iterdir()) == ["mnist.npz"]
    manifest = json.loads((cache / "mnist" / "manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["mnist.npz"]
    assert found.files == 1 and found.bytes == (tmp_path / "mnist.npz").stat().st_size
    assert (found.folder / "mnist.npz").stat().st_mode & 0o777 == 0o644


def test_a_folder_keeps_its_layout_and_the_hash_follows_its_contents(tmp_path: Path) -> None:
    src = tmp_path / "MNIST"
    (src / "MNIST" / "raw").mkdir(parents=True)
    (src / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03")
    cache = tmp_path / "cache"
    first = datasets.add("mnist-tv", src, cache)
    assert (first.folder / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    with pytest.raises(DatasetError, match="--replace"):
        datasets.add("mnist-tv", src, cache)
    (src / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x04")
    second = datasets.add("mnist-tv", src, cache, replace=True)
    assert second.sha256 != first.sha256
    assert datasets.manifests_sha256(["mnist-tv", "nope"], cache) == {
        "mnist-tv": second.sha256,
        "nope": None,
    }


def test_credentials_and_links_are_refused(tmp_path: Path) -> None:
    hf = tmp_path / "huggingface"
    hf.mkdir()
    (hf / "token").write_text("hf_secret")
    with pytest.raises(DatasetError, match="credential"):
        datasets.add("hf", hf, tmp_path / "cache")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "x.npz").symlink_to(mnist_npz(tmp_path / "m.npz"))
    with pytest.raises(DatasetError, match="symbolic link"):
        datasets.add("linked", linked, tmp_path / "cache")
    with pytest.raises(DatasetError, match="not a data set name"):
        datasets.add("../up", linked, tmp_path / "cache")
    assert datasets.all_datasets(tmp_path / "cache") == []


def test_resolve_names_every_missing_set(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    datasets.add("mnist", mnist_npz(tmp_path / "mnist.npz"), cache)
    assert [d.name for d in datasets.resolve(["mnist"], cache)] == ["mnist"]
    with pytest.raises(DatasetError, match=r"cifar10, imdb .*grade data add NAME"):
        datasets.resolve(["mnist", "cifar10", "imdb"], cache)


def test_the_cache_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRADER_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_root() == tmp_path / "xdg" / "grader" / "datasets"
    monkeypatch.setenv("GRADER_DATA", str(tmp_path / "d"))
    assert datasets.cache_root() == tmp_path / "d"
    assert datasets.cache_root(tmp_path / "c") == tmp_path / "c"


def test_grade_data_add_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(tmp_path / "cache")
    assert main(["data", "list", "--cache", cache]) == 0
    assert "no data sets" in capsys.readouterr().out
    src = str(mnist_npz(tmp_path / "mnist.npz"))
    assert main(["data", "add", "mnist", "--from", src, "--cache", cache]) == 0
    assert "added mnist: 1 file(s)" in capsys.readouterr().out
    assert main(["data", "list", "--cache", cache]) == 0
    assert "  mnist  1 file(s)" in capsys.readouterr().out
    assert main(["data", "add", "mnist", "--from", src, "--cache", cache]) == 2
    assert "already in" in capsys.readouterr().err
