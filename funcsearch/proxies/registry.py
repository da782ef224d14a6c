"""The proxy registry: every proxy task by name.

The built-in proxies register themselves from their own modules (each declares a
``PROXY``); third-party proxies plug in through the ``funcsearch.proxies`` entry-point group
(an entry point names a :class:`Proxy` object) or by calling :func:`register_proxy`.
Nothing outside a proxy's module and this registry names a proxy.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from funcsearch.errors import InputError
from funcsearch.metrics import Metric
from funcsearch.proxies.proxy import Proxy

BUILTIN_MODULES = ("funcsearch.proxies.vit", "funcsearch.proxies.dit", "funcsearch.proxies.lm",
                   "funcsearch.proxies.vit_screen")
"""Modules whose ``PROXY`` is registered at import, in this order (the default order of
tables and CLI help)."""

PROXIES: dict[str, Proxy] = {}
"""Every registered proxy by name."""


def register_proxy(proxy: Proxy, *, replace: bool = False) -> Proxy:
    """Add ``proxy`` to the registry (``replace`` to redefine a name)."""
    if not isinstance(proxy, Proxy):
        raise TypeError(f"register_proxy needs a funcsearch.proxies.Proxy, got {type(proxy).__name__}")
    if proxy.name in PROXIES and not replace and PROXIES[proxy.name] is not proxy:
        raise ValueError(f"a proxy named {proxy.name!r} is already registered")
    if proxy.task is not None:  # a copied run of the task keeps its score: the same metrics
        task = PROXIES.get(proxy.task)
        if task is None:
            raise ValueError(f"proxy {proxy.name}: its task {proxy.task!r} is not a registered proxy")
        if (task.metrics, task.primary_metric) != (proxy.metrics, proxy.primary_metric):
            raise ValueError(f"proxy {proxy.name}: shares the runs of {task.name}, so it must report "
                             f"{task.name}'s metrics and primary metric")
    PROXIES[proxy.name] = proxy
    return proxy


def unregister_proxy(name: str) -> None:
    """Remove a proxy (tests register throwaway proxies and remove them afterwards)."""
    PROXIES.pop(name, None)


def get_proxy(name: str, *, field: str | None = "--proxy") -> Proxy:
    """The proxy ``name``; an ``InputError`` listing the known ones otherwise."""
    if name not in PROXIES:
        raise InputError(f"unknown proxy {name!r} (known: {', '.join(PROXIES)})", field=field)
    return PROXIES[name]


def proxy_names() -> tuple[str, ...]:
    return tuple(PROXIES)


def declared_metric(proxy: str, metric: str) -> Metric | None:
    """The metric as ``proxy`` declares it; None for results of a proxy or metric not
    registered here (stored rows still carry their direction)."""
    entry = PROXIES.get(proxy)
    if entry is None:
        return None
    return next((m for m in entry.metrics if m.name == metric), None)


def is_screen(name: str) -> bool:
    """Whether ``name`` is a registered stability screen (``Proxy.role``): the aggregate reads
    only its divergences, and its trials always run in full."""
    entry = PROXIES.get(name)
    return entry is not None and entry.role == "screen"


def _register_builtins() -> None:
    for module in BUILTIN_MODULES:
        register_proxy(importlib.import_module(module).PROXY)
    for entry in entry_points(group="funcsearch.proxies"):
        try:
            register_proxy(entry.load())
        except Exception as exc:  # a broken plug-in must not break the built-in proxies
            import warnings

            warnings.warn(f"funcsearch: proxy plug-in {entry.name!r} not loaded: {exc}", stacklevel=2)


_register_builtins()
