"""Stable trial keys: a hash of exactly what decides a training run's numbers.

A trial key is the SHA-256 (first 16 hex digits) of a canonical JSON document holding the
candidate's expression (or its name for LayerNorm / RMSNorm, which have none), the
unified-form settings (shift, alpha init), the proxy's task (its name, or the proxy whose
runs it shares: ``vit_screen``'s are ``vit``'s), the seed, the proxy's *resolved*
config (every field after overrides), the data path, and where the run computes (device and
precision) when that is not the CPU in fp32: CPU fp32 trials keep the keys they always had,
while a GPU or bf16 trial gets its own key, so numbers of different devices are never mixed
by reuse. An expression that takes a root also records how its compiled form differentiates
at 0 (``expressions.ROOT_GRADIENT``): trials computed before that rule (NaN gradients at exact
zeros) keep their old keys and are not reused under it, while every other expression keeps its
key. Likewise a recipe setting added after trials were stored is left out of the key at the
value every earlier trial ran with (``ADDED_SETTINGS``), so adding it reruns nothing. Names,
display order and search settings that do not change a run's numbers are left out, so
renaming a candidate or adding another one never reruns anything, and changing one setting
reruns only the trials whose resolved config it changes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

KEY_LENGTH = 16


def _normalise(value: Any) -> Any:
    """JSON-ready copy with floats spelled stably (``1e-3`` and ``0.001`` agree)."""
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        if value.is_integer() and abs(value) < 2**53:
            return f"{value:.1f}"  # 1.0 and 1 must not collide with an int field silently
        return repr(value)
    return repr(value)


def canonical_json(value: Any) -> str:
    """Sorted, whitespace-free JSON of ``value``: the text that gets hashed."""
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"))


def digest(value: Any, length: int = KEY_LENGTH) -> str:
    """Hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


ADDED_SETTINGS: dict[str, Any] = {"alpha_gain": 1.0, "pool": "mean", "mixup": 0.0, "cutmix": 0.0,
                                  "random_erase": 0.0, "layernorm_sites": []}
"""Recipe settings added after trials were stored, with the value every earlier trial ran with:
at that value a setting is left out of the key (a trial that changes it gets a new key)."""

DEFAULT_RUNTIME = ("cpu", "fp32")
"""The device and precision every trial had before devices existed: left out of the key."""


def trial_key(*, name: str, expression: str | None, shift: str, alpha_init: float,
              proxy: str, seed: int, resolved_config: Mapping[str, Any],
              data: str | None, device: str = "cpu", precision: str = "fp32",
              root_gradient: str | None = None) -> str:
    """The key of one training run (see module docstring for what goes in)."""
    return digest({**_cell(name, expression, shift, alpha_init, proxy, resolved_config, data,
                           device, precision, root_gradient),
                   "seed": int(seed)})


def unit_key(*, name: str, expression: str | None, shift: str, alpha_init: float,
             proxy: str, resolved_config: Mapping[str, Any], data: str | None,
             device: str = "cpu", precision: str = "fp32", root_gradient: str | None = None) -> str:
    """The key of one (function, proxy, hyperparameters) cell: a trial key without the seed."""
    return digest(_cell(name, expression, shift, alpha_init, proxy, resolved_config, data,
                        device, precision, root_gradient))


def _cell(name: str, expression: str | None, shift: str, alpha_init: float, proxy: str,
          resolved_config: Mapping[str, Any], data: str | None, device: str,
          precision: str, root_gradient: str | None = None) -> dict[str, Any]:
    """What decides a run's numbers apart from the seed (key order does not matter: sorted)."""
    cell: dict[str, Any] = {
        "function": expression if expression is not None else f"norm:{name}",
        "shift": shift,
        "alpha_init": float(alpha_init),
        "proxy": proxy,
        "config": {k: v for k, v in resolved_config.items()
                   if not (k in ADDED_SETTINGS and v == ADDED_SETTINGS[k])},
        "data": data,
    }
    if (device, precision) != DEFAULT_RUNTIME:
        cell["runtime"] = {"device": device, "precision": precision}
    if root_gradient is not None:
        cell["root_gradient"] = root_gradient
    return cell
