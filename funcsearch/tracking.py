"""Trials exported to TensorBoard event files (the ``tensorboard`` extra: ``tensorboardX``).

    export_tensorboard("results/paper_search", "runs/paper_search")
    tensorboard --logdir runs/paper_search

One run per trial, named ``<proxy>/<function>/seed<seed>`` (with the hyperparameter point
when the study swept one): every per-epoch curve value as a scalar at its epoch
(``curve/<metric>``), the final metrics (``final/<metric>``, in the display unit the
proxy declares: accuracy in %), and the trial's settings and outcome as hparams (so
TensorBoard's HParams tab can compare functions). Only the library's own rows are read.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from funcsearch.errors import InputError

__all__ = ["export_tensorboard"]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+\-|]", "_", text)


def export_tensorboard(results: str | Path | pd.DataFrame, logdir: str | Path) -> int:
    """Write one event-file run per trial of ``results`` under ``logdir``; returns the count."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError as error:  # the optional extra
        raise InputError("TensorBoard export needs the extra: pip install 'funcsearch[tensorboard]'",
                         field="--to") from error
    from funcsearch.proxies.registry import declared_metric
    from funcsearch.search.store import read_results

    frame = results if isinstance(results, pd.DataFrame) else read_results(results)
    logdir = Path(logdir)
    written = 0
    for _, row in frame.iterrows():
        point = row["hyperparameters"] if row["hyperparameters"] not in (None, "", "{}") else ""
        name = "/".join([_safe(str(row["proxy"])), _safe(str(row["candidate"]) + (f" {point}" if point else "")),
                         f"seed{int(row['seed'])}"])
        curve = json.loads(row["curve"]) if isinstance(row["curve"], str) and row["curve"] else []
        metrics = json.loads(row["metrics"]) if isinstance(row["metrics"], str) and row["metrics"] else {}
        with SummaryWriter(str(logdir / name)) as writer:
            for i, values in enumerate(curve):
                epoch = int(values.get("epoch", i + 1))
                for key, value in values.items():
                    if key not in ("epoch", "step") and isinstance(value, (int, float)) and math.isfinite(value):
                        writer.add_scalar(f"curve/{key}", float(value), epoch)
            final = {}
            for key, value in metrics.items():
                declared = declared_metric(str(row["proxy"]), key)
                final[f"final/{key}"] = float(value) * (declared.scale if declared else 1.0)
            hparams = {"proxy": str(row["proxy"]), "function": str(row["candidate"]),
                       "expression": str(row["expression"] or row["candidate"]), "shift": str(row["shift"]),
                       "seed": int(row["seed"]), "status": str(row["status"]), "point": str(point or "-")}
            last = int(curve[-1].get("epoch", len(curve))) if curve else 0
            for key, value in final.items():
                if math.isfinite(value):
                    writer.add_scalar(key, value, last)
            # the HParams tab, in this run's own event file (add_hparams would open a second
            # writer whose file name can collide with this one's within the same second)
            from tensorboardX.summary import hparams as hparams_summary

            for summary in hparams_summary(hparams, {k: v for k, v in final.items() if math.isfinite(v)}):
                writer._get_file_writer().add_summary(summary)
        written += 1
    return written
