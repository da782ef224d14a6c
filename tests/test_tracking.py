"""Trials exported to TensorBoard event files, read back with tensorboardX's own protobufs."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

pytest.importorskip("tensorboardX")

from fixtures.results_fixture import write_results  # noqa: E402
from funcsearch.tracking import export_tensorboard  # noqa: E402


def _events(path: Path) -> list:
    from tensorboardX.proto import event_pb2

    data, events, at = path.read_bytes(), [], 0
    while at < len(data):  # TFRecord: length, crc, payload, crc
        (length,) = struct.unpack("<Q", data[at:at + 8])
        events.append(event_pb2.Event.FromString(data[at + 12:at + 12 + length]))
        at += 12 + length + 4
    return events


def test_every_trial_is_a_run_with_its_curve_and_final_metrics_in_display_units(tmp_path: Path) -> None:
    study = write_results(tmp_path / "study")
    count = export_tensorboard(study, tmp_path / "runs")
    runs = sorted(p.parent for p in (tmp_path / "runs").rglob("events.out.tfevents.*") if p.parent.name != ".")
    assert count == 36 and len({r for r in runs if "seed" in r.name}) == 36
    run = tmp_path / "runs" / "vit" / "erf" / "seed0"
    scalars = {}
    for path in run.rglob("events.out.tfevents.*"):
        for event in _events(path):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert [step for step, _ in scalars["curve/train_loss"]] == [1, 2, 3, 4]
    final = [v for tag, values in scalars.items() if tag.endswith("final/test_acc") for _, v in values]
    assert final and 50 < final[0] <= 100  # accuracy in %
