"""Image datasets for the proxies: the embedded digits default and local-file loaders.

Every loader returns an ``ImageDataset``: float32 images in ``[0, 1]`` shaped
``(N, C, H, W)``, int64 labels ``0..K-1``, a train and a test split, and a content
fingerprint (used to key caches such as the FID classifier). Nothing is ever downloaded.

Accepted sources (``load_dataset(path)``):

- ``None`` -> scikit-learn's bundled handwritten digits (1797 images, 8x8, 10 classes),
  split once with a fixed seed into a stratified 80 % train / 20 % test split that does
  not depend on any trial seed.
- a CIFAR-10 folder in the standard python-pickle layout (``data_batch_1`` ..
  ``data_batch_5`` and ``test_batch``; the folder itself or its parent holding
  ``cifar-10-batches-py``). Each file is a pickled dict with ``b"data"`` (uint8,
  ``(N, 3072)``, channel-major 3x32x32) and ``b"labels"``. The pickles are read with a
  restricted unpickler that only rebuilds numpy arrays and plain containers.
- a ``.npz`` file (read with ``allow_pickle=False``) holding either
  ``x_train, y_train, x_test, y_test`` (used as given) or ``images, labels`` (split
  with the same fixed stratified 80/20 rule as digits). Images may be ``(N, H, W)``
  (grayscale), ``(N, H, W, C)`` or ``(N, C, H, W)`` with ``C`` in {1, 3}; ``uint8``
  values are divided by 255, other integer values must lie in ``[0, 255]`` (also divided
  by 255), float values must already lie in ``[0, 1]``. Labels are a 1-D integer array
  of the same length with values ``0..K-1``, ``K <= MAX_CLASSES`` (1000).

Limits before work: an ``.npz`` is checked from its members' headers (shape and dtype,
read without decompressing the data) before any array is loaded: only the arrays named
above are read, none may hold Python objects, and together they hold at most
:data:`MAX_VALUES` numbers (an 800 KB archive of zeros can otherwise decompress to 10 GB).
A CIFAR batch file may be at most :data:`MAX_BATCH_BYTES`.

A wrong path or format raises ``DataError`` naming the path and what is wrong, in one line.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from funcsearch.errors import DataError

#: the fixed split: never tied to a trial seed, so every trial sees the same test set
SPLIT_SEED = 0
TEST_FRACTION = 0.2
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
MAX_CLASSES = 1000
"""Most classes of an image dataset: labels are 0..K-1 with K at most this (a stray label of
5,000,000 would otherwise build a 5,000,001-way head)."""
MAX_VALUES = 400_000_000
"""Most numbers the arrays of one ``.npz`` may hold together (1.6 GB as float32; CIFAR-10 is
184 million)."""
MAX_BATCH_BYTES = 256 * 1024 * 1024
"""Largest CIFAR-10 batch file read (the real ones are 31 MB)."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image classification dataset, images in ``[0, 1]``, ``(N, C, H, W)``."""

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    num_classes: int
    fingerprint: str = field(default="")

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_images.shape[2]), int(self.train_images.shape[3])


def load_dataset(path: str | Path | None = None) -> ImageDataset:
    """Load the dataset at ``path`` (see the module docstring); ``None`` = embedded digits."""
    if path is None:
        return load_digits_dataset()
    return _load_path_cached(str(Path(path).expanduser().resolve()))


@lru_cache(maxsize=4)
def _load_path_cached(path_text: str) -> ImageDataset:
    path = Path(path_text)
    if not path.exists():
        raise DataError("dataset path does not exist", file=path_text)
    if path.is_dir():
        return load_cifar10(path)
    if path.suffix == ".npz":
        return load_npz(path)
    raise DataError(
        "unrecognised dataset: expected a CIFAR-10 folder (data_batch_1..5, test_batch) "
        "or a .npz file", file=path_text,
    )


@lru_cache(maxsize=1)
def load_digits_dataset() -> ImageDataset:
    """scikit-learn's bundled 8x8 digits with the fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    return _split_and_pack("digits", images, labels)


def load_cifar10(folder: str | Path) -> ImageDataset:
    """CIFAR-10 from its python-pickle folder (or a parent holding ``cifar-10-batches-py``)."""
    folder = Path(folder)
    if not (folder / CIFAR_TEST_FILE).exists() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    missing = [n for n in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE) if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"not a CIFAR-10 python folder: missing {', '.join(missing)} "
            f"(expected data_batch_1..5 and test_batch)", file=str(folder),
        )
    train = [_read_cifar_batch(folder / n) for n in CIFAR_TRAIN_FILES]
    test_images, test_labels = _read_cifar_batch(folder / CIFAR_TEST_FILE)
    train_images = np.concatenate([t[0] for t in train])
    train_labels = np.concatenate([t[1] for t in train])
    return _pack("cifar10", train_images, train_labels, test_images, test_labels, str(folder))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and builtin containers only: a dataset file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("builtins", "tuple"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise DataError(f"cannot read: {_one_line(error)}", file=str(path)) from None
    if size > MAX_BATCH_BYTES:
        raise DataError(f"file is {size} bytes, more than the {MAX_BATCH_BYTES} a CIFAR-10 batch "
                        "may have", file=str(path))
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except Exception as error:  # any unpickling problem is a format problem
        raise DataError(f"cannot read as a CIFAR-10 pickle batch: {_one_line(error)}",
                        file=str(path)) from None
    if not isinstance(batch, dict):
        raise DataError(f"expected a pickled dict, found {type(batch).__name__}", file=str(path))
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        keys = ", ".join(repr(k) for k in batch)
        raise DataError(f"expected keys b'data' and b'labels', found {keys}", file=str(path))
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"b'data' must be (N, 3072) uint8, found shape {data.shape}", file=str(path))
    if labels.shape != (data.shape[0],):
        raise DataError(
            f"b'labels' must hold one label per image ({data.shape[0]}), found shape {labels.shape}",
            file=str(path),
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_npz(path: str | Path) -> ImageDataset:
    """A ``.npz`` with ``x_train/y_train/x_test/y_test`` or ``images/labels`` (module docstring)."""
    path = Path(path)
    where = str(path)
    members = _npz_members(path)
    split_keys = ("x_train", "y_train", "x_test", "y_test")
    if all(k in members for k in split_keys):
        keys: tuple[str, ...] = split_keys
    elif "images" in members and "labels" in members:
        keys = ("images", "labels")
    else:
        found = ", ".join(sorted(members)[:20]) or "no arrays"
        raise DataError(
            f"expected arrays x_train, y_train, x_test, y_test or images, labels; found {found}",
            file=where,
        )
    headers = _npz_headers(path, {key: members[key] for key in keys})
    total = 0
    for key in keys:
        shape, dtype = headers[key]
        if dtype.hasobject:
            raise DataError(f"{key} holds Python objects (dtype {dtype}), not numbers",
                            file=where, field=key)
        if dtype.kind not in "uif":
            what = "integers" if key.startswith(("y_", "labels")) else "integer or float"
            raise DataError(f"{key} must be {what}, found dtype {dtype}", file=where, field=key)
        total += math.prod(shape)
    if total > MAX_VALUES:
        raise DataError(f"the arrays hold {total:,} numbers, more than the limit of "
                        f"{MAX_VALUES:,}", file=where)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in keys}
    except Exception as error:
        raise DataError(f"cannot read as a .npz archive: {_one_line(error)}", file=where) from None
    if keys == split_keys:
        return _pack(path.stem, *(arrays[k] for k in split_keys), where)
    images = _to_nchw(arrays["images"], where, "images")
    return _split_and_pack(path.stem, images, _check_labels(arrays["labels"], images, where, "labels"),
                           source=where)


MAX_NPZ_MEMBERS = 1000
"""Most members an ``.npz`` may list."""


def _npz_members(path: Path) -> dict[str, str]:
    """Array name -> member name of the ``.npy`` members of an ``.npz`` (nothing is read)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception as error:  # not a zip file, unreadable
        raise DataError(f"cannot read as a .npz archive: {_one_line(error)}", file=str(path)) from None
    if len(names) > MAX_NPZ_MEMBERS:
        raise DataError(f"archive lists {len(names)} members, more than {MAX_NPZ_MEMBERS}",
                        file=str(path))
    return {name[:-4]: name for name in names if name.endswith(".npy")}


def _npz_headers(path: Path, members: dict[str, str]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of the given ``.npy`` members, read from their headers only."""
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    key = ""
    try:
        with zipfile.ZipFile(path) as archive:
            for key, name in members.items():
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:
                        shape, _, dtype = np.lib.format._read_array_header(member, version)
                headers[key] = (tuple(int(n) for n in shape), np.dtype(dtype))
    except Exception as error:  # a member that is not an .npy array, a bad header
        raise DataError(f"cannot read as a .npz archive: {_one_line(error)}", file=str(path),
                        field=key or None) from None
    return headers


def _to_nchw(images: np.ndarray, where: str, key: str) -> np.ndarray:
    """Images as float32 ``(N, C, H, W)`` in [0, 1]; DataError on any other layout or range."""
    given = images.shape
    if images.ndim == 3:
        images = images[:, None, :, :]
    elif images.ndim == 4:
        if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            images = np.transpose(images, (0, 3, 1, 2))
        elif images.shape[1] not in (1, 3):
            raise DataError(
                f"{key} must have 1 or 3 channels (first or last axis), found shape {images.shape}",
                file=where, field=key,
            )
    else:
        raise DataError(
            f"{key} must be (N, H, W), (N, H, W, C) or (N, C, H, W), found shape {images.shape}",
            file=where, field=key,
        )
    if images.shape[0] == 0:
        raise DataError(f"{key} is empty", file=where, field=key)
    if images.size == 0:
        raise DataError(f"{key} has an axis of size 0 (shape {given})", file=where, field=key)
    if np.issubdtype(images.dtype, np.integer):
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255:
            raise DataError(f"integer {key} must lie in [0, 255], found [{low}, {high}]",
                            file=where, field=key)
        return (images.astype(np.float32) / 255.0)
    if np.issubdtype(images.dtype, np.floating):
        if not np.isfinite(images).all():
            raise DataError(f"{key} holds non-finite values", file=where, field=key)
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise DataError(f"float {key} must lie in [0, 1], found [{low:.4g}, {high:.4g}]",
                            file=where, field=key)
        return images.astype(np.float32)
    raise DataError(f"{key} must be integer or float, found dtype {images.dtype}", file=where, field=key)


def _check_labels(labels: np.ndarray, images: np.ndarray, where: str, key: str) -> np.ndarray:
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{key} must be 1-D with one label per image ({images.shape[0]}), found shape {labels.shape}",
            file=where, field=key,
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{key} must be integers, found dtype {labels.dtype}", file=where, field=key)
    if labels.min() < 0:
        raise DataError(f"{key} must be in 0..K-1, found {int(labels.min())}", file=where, field=key)
    if int(labels.max()) >= MAX_CLASSES:
        raise DataError(f"{key} must be class indices 0..K-1 with K at most {MAX_CLASSES}, "
                        f"found label {int(labels.max())}", file=where, field=key)
    return labels.astype(np.int64)


def _split_and_pack(name: str, images: np.ndarray, labels: np.ndarray, source: str = "") -> ImageDataset:
    """Fixed stratified split (``SPLIT_SEED``, ``TEST_FRACTION``), independent of trial seeds."""
    from sklearn.model_selection import train_test_split

    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
        )
    except ValueError as error:  # e.g. a class with a single example
        raise DataError(f"cannot make a stratified split: {error}", file=source or name) from None
    return _pack(name, images[train_idx], labels[train_idx], images[test_idx], labels[test_idx],
                 source or name)


def _pack(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
          y_test: np.ndarray, where: str) -> ImageDataset:
    x_train = _to_nchw(np.asarray(x_train), where, "x_train")
    x_test = _to_nchw(np.asarray(x_test), where, "x_test")
    y_train = _check_labels(np.asarray(y_train), x_train, where, "y_train")
    y_test = _check_labels(np.asarray(y_test), x_test, where, "y_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"train and test images differ in shape: {x_train.shape[1:]} vs {x_test.shape[1:]}", file=where
        )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    digest = hashlib.sha256()
    for array in (x_train, y_train, x_test, y_test):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return ImageDataset(
        name=name,
        train_images=torch.from_numpy(np.ascontiguousarray(x_train)),
        train_labels=torch.from_numpy(y_train),
        test_images=torch.from_numpy(np.ascontiguousarray(x_test)),
        test_labels=torch.from_numpy(y_test),
        num_classes=num_classes,
        fingerprint=f"{name}-{digest.hexdigest()[:16]}",
    )
