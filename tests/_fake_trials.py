"""Stand-in trial functions for the search tests (module level: Ray pickles them by reference).

They behave like ``funcsearch.proxies.run_trial`` (per-epoch curve, ``on_epoch`` may stop
the run, a ``TrialResult`` back) but take a fraction of a second, and two expressions
misbehave on purpose: anything with ``sinh`` raises (-> ``failed``), anything with
``cosh`` ends with a NaN metric (-> ``diverged``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from funcsearch.proxies import PROXIES, TrialResult, TrialSpec

EPOCH_SECONDS = 0.05


def _quality(spec: TrialSpec) -> float:
    """A deterministic 'how good is this function' in [0.5, 0.9] plus seed noise."""
    text = spec.function.expression or spec.function.name
    base = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    noise = int(hashlib.sha256(f"{text}|{spec.seed}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return 0.5 + 0.4 * base + 0.01 * (noise - 0.5)


def fake_trial(spec: TrialSpec, on_epoch: Callable[[int, dict[str, float]], bool] | None = None,
               threads: int = 1) -> TrialResult:
    """A pretend proxy run: ``epochs`` from the overrides (default 3), accuracy rising to a plateau."""
    start = time.perf_counter()
    text = spec.function.expression or spec.function.name
    if "sinh" in text:
        raise ValueError(f"boom: {text} is not supported by the fake trial")
    epochs = int(spec.overrides.get("epochs", 3))
    quality = _quality(spec) + (0.05 if spec.overrides.get("lr") == 0.003 else 0.0)
    proxy = PROXIES[spec.proxy]
    rung = proxy.metric(proxy.halving_metric)  # the per-epoch metric halving ranks on, as declared
    curve: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        time.sleep(EPOCH_SECONDS)
        progress = quality * epoch / epochs
        metrics = {"epoch": float(epoch), "train_loss": 2.0 / epoch, "test_acc": progress,
                   rung.name: progress if rung.higher_is_better else 2.3 * (1 - progress)}
        curve.append(metrics)
        if on_epoch is not None and on_epoch(epoch, dict(metrics)):
            return TrialResult(status="pruned", metrics={rung.name: metrics[rung.name]}, curve=curve,
                               wall_time_s=time.perf_counter() - start, config=dict(spec.overrides),
                               message=f"stopped by the epoch callback after epoch {epoch}")
    value = quality if proxy.higher_is_better else 100 * (1 - quality)
    final = {proxy.primary_metric: float("nan") if "cosh" in text else value}
    return TrialResult(status="ok", metrics=final, curve=curve, wall_time_s=time.perf_counter() - start,
                       config=dict(spec.overrides), versions={"fake": "1"})


def resource_trial(spec: TrialSpec, on_epoch: Callable[[int, dict[str, float]], bool] | None = None,
                   threads: int = 1) -> TrialResult:
    """Holds its worker for a second and records when, and which Ray resources it was given."""
    import ray

    start = time.time()
    time.sleep(1.0)
    assigned = ray.get_runtime_context().get_assigned_resources()
    proxy = PROXIES[spec.proxy]
    return TrialResult(status="ok", metrics={proxy.primary_metric: 0.5}, curve=[{"epoch": 1.0}],
                       wall_time_s=time.time() - start, config=dict(spec.overrides),
                       details={"start": start, "end": time.time(), "gpu": assigned.get("GPU", 0.0),
                                "device": spec.device})
