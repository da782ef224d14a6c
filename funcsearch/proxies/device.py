"""Where and how a trial computes: the device and the numeric precision, chosen once.

Like nanoGPT's ``train.py``, a trial picks its device and dtype in one place and hands a
:class:`Runtime` down; models, samplers, feature extractors and random generators create
their tensors on ``runtime.device``. ``bf16`` runs the forward passes under
``torch.autocast`` (parameters and optimizer state stay float32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

from funcsearch.errors import InputError

DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("fp32", "bf16")
DeviceName = Literal["cpu", "cuda", "auto"]
Precision = Literal["fp32", "bf16"]


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(name: str, *, field: str = "--device") -> str:
    """``cpu`` / ``cuda`` (``auto`` = cuda when this process sees a GPU); a one-line error for
    ``cuda`` without one."""
    if name not in DEVICES:
        raise InputError(f"unknown device {name!r} (choose from {', '.join(DEVICES)})", field=field)
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    if name == "cuda" and not cuda_available():
        raise InputError("device cuda asked for, but torch sees no CUDA GPU here "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})",
                         field=field)
    return name


@dataclass(frozen=True)
class Runtime:
    """How one trial executes: device (``cpu`` or ``cuda``), precision, and where its training
    state is kept when a run stops early (``checkpoint``: a file; a later, longer run of the
    same trial continues from it instead of retraining from epoch 0)."""

    device: str = "cpu"
    precision: str = "fp32"
    checkpoint: str | None = None

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def generator(self, seed: int) -> torch.Generator:
        """A seeded random generator on the trial's device."""
        return torch.Generator(device=self.torch_device).manual_seed(int(seed))

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Forward passes in bf16 under ``precision: bf16``; a no-op for fp32."""
        if self.precision == "bf16":
            with torch.autocast(device_type=self.device, dtype=torch.bfloat16):
                yield
        else:
            yield

    def facts(self) -> dict[str, str]:
        """What each trial records about where it ran (device, GPU name, CUDA version)."""
        out = {"device": self.device, "precision": self.precision}
        if self.device == "cuda":
            out["gpu"] = torch.cuda.get_device_name(self.torch_device)
            out["cuda"] = str(torch.version.cuda)
        return out
