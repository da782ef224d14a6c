"""The proxy tasks candidates are trained on, as plug-ins: each proxy module declares a
:class:`Proxy` (config class, metrics with directions and units, primary and halving
metrics, data loader, smoke recipe) and the registry lists them.

Public contract (docs/architecture.md): ``run_trial(spec) -> TrialResult`` and the
``PROXIES`` registry.
"""

from __future__ import annotations

from funcsearch.proxies.config import TrainConfig, parse_set_options
from funcsearch.proxies.device import Runtime, resolve_device
from funcsearch.proxies.proxy import Proxy
from funcsearch.proxies.registry import PROXIES, get_proxy, register_proxy, unregister_proxy
from funcsearch.proxies.trial import FunctionSpec, TrialResult, TrialSpec, make_trial_spec, run_trial

__all__ = [
    "PROXIES", "Proxy", "TrainConfig", "FunctionSpec", "TrialSpec", "TrialResult", "run_trial",
    "make_trial_spec", "parse_set_options", "get_proxy", "register_proxy", "unregister_proxy",
    "Runtime", "resolve_device",
]
