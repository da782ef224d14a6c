"""Proxy datasets: the embedded digits split and the local-file loaders with their errors."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from funcsearch.errors import DataError
from funcsearch.proxies.data import (
    load_cifar10,
    load_dataset,
    load_digits_dataset,
    load_npz,
)


def test_digits_default_is_a_fixed_stratified_split_in_unit_range() -> None:
    data = load_dataset(None)
    assert data.train_images.shape[1:] == (1, 8, 8)
    assert len(data.train_labels) + len(data.test_labels) == 1797
    assert len(data.test_labels) == 360
    assert data.num_classes == 10
    assert 0.0 <= float(data.train_images.min()) and float(data.train_images.max()) <= 1.0
    # stratified: every class has a share of the test set close to its share overall
    counts = torch.bincount(data.test_labels, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38
    # fixed: rebuilding from scratch gives the same split and fingerprint
    load_digits_dataset.cache_clear()
    again = load_dataset(None)
    assert torch.equal(again.test_labels, data.test_labels)
    assert torch.equal(again.train_images, data.train_images)
    assert again.fingerprint == data.fingerprint


def _images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def test_npz_with_explicit_splits_channels_last_uint8(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=_images(20, (8, 8, 3)), y_train=np.arange(20) % 4,
             x_test=_images(8, (8, 8, 3), 1), y_test=np.arange(8) % 4)
    data = load_dataset(path)
    assert data.train_images.shape == (20, 3, 8, 8)
    assert data.test_images.shape == (8, 3, 8, 8)
    assert data.num_classes == 4
    assert float(data.train_images.max()) <= 1.0
    assert data.name == "mine"


def test_npz_with_images_and_labels_is_split_stratified(tmp_path: Path) -> None:
    path = tmp_path / "all.npz"
    images = np.random.default_rng(0).random((50, 6, 6)).astype(np.float32)
    np.savez(path, images=images, labels=np.arange(50) % 5)
    data = load_npz(path)
    assert data.train_images.shape == (40, 1, 6, 6)
    assert torch.bincount(data.test_labels).tolist() == [2, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"pictures": np.zeros((4, 8, 8)), "targets": np.zeros(4, int)}, "expected arrays x_train"),
        ({"images": np.zeros((10, 8)), "labels": np.zeros(10, int)}, "images must be (N, H, W)"),
        ({"images": np.full((10, 4, 4), 2.0), "labels": np.arange(10) % 2}, "must lie in [0, 1]"),
        ({"images": np.zeros((10, 4, 4)), "labels": np.zeros(9, int)}, "one label per image"),
        ({"images": np.zeros((10, 4, 4)), "labels": np.zeros(10)}, "labels must be integers"),
        ({"images": np.zeros((10, 5, 4, 4)), "labels": np.zeros(10, int)}, "1 or 3 channels"),
    ],
)
def test_npz_errors_name_the_path_and_the_problem(tmp_path: Path, arrays: dict, expected: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_path_and_unknown_format_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as caught:
        load_dataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)
    text = tmp_path / "data.csv"
    text.write_text("1,2,3\n")
    with pytest.raises(DataError, match="unrecognised dataset") as caught:
        load_dataset(text)
    assert str(text) in str(caught.value)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match="cannot read as a .npz") as caught:
        load_dataset(broken)
    assert str(broken) in str(caught.value)


def _write_cifar(folder: Path, n: int = 6) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(range(n)), b"batch_label": name.encode()}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)


def test_cifar10_python_layout_loads_from_folder_or_parent(tmp_path: Path) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_cifar10(tmp_path)
    assert data.train_images.shape == (30, 3, 32, 32)
    assert data.test_images.shape == (6, 3, 32, 32)
    assert data.num_classes == 6
    assert load_dataset(tmp_path / "cifar-10-batches-py").fingerprint == data.fingerprint


def test_cifar10_missing_batches_and_bad_pickles_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "cifar"
    _write_cifar(folder)
    os.remove(folder / "data_batch_3")
    with pytest.raises(DataError, match="missing data_batch_3") as caught:
        load_cifar10(folder)
    assert str(folder) in str(caught.value)

    _write_cifar(folder)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"pixels": np.zeros((2, 3072), np.uint8)}, handle)
    with pytest.raises(DataError, match="b'data' and b'labels'") as caught:
        load_cifar10(folder)
    assert str(folder / "test_batch") in str(caught.value)


class _Payload:
    def __reduce__(self):  # what a malicious pickle would do on load
        return (os.system, ("echo pwned",))


def test_cifar10_pickles_cannot_run_code(tmp_path: Path) -> None:
    folder = tmp_path / "cifar"
    _write_cifar(folder)
    with open(folder / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": _Payload(), b"labels": [0]}, handle)
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar10(folder)
