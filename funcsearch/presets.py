"""Proxy presets: named recipes (e.g. written by ``funcsearch calibrate``) a search can use.

A preset file (``search_configs/proxies/<name>.yaml``)::

    proxy: vit
    description: ...
    overrides: {depth: 8, dim: 128, lr: 0.004, ...}
    fidelity: {...}            # optional: the figures that justified it (kept for readers)

In a search config: ``proxies: {vit: {preset: vit_calibrated, overrides: {epochs: 5}}}``;
the search's own overrides apply on top of the preset's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from funcsearch.errors import ConfigError
from funcsearch.yamlio import load_yaml


def preset_path(name: str, base: Path | None = None) -> Path:
    """Find a preset: a path (absolute or relative to cwd / ``base``), or a name looked up in
    ``search_configs/proxies/`` (under cwd, then next to ``base``)."""
    candidates = [Path(name)]
    if base is not None:
        candidates.append(base / name)
    stem = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    candidates.append(Path("search_configs") / "proxies" / stem)
    if base is not None:
        candidates += [base / "proxies" / stem, base / "search_configs" / "proxies" / stem]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"proxy preset {name!r} not found (looked in {', '.join(str(p) for p in candidates)})")


def load_preset(name: str, proxy: str, base: Path | None = None) -> dict[str, Any]:
    """The overrides of a preset, checked to belong to ``proxy``."""
    path = preset_path(name, base)
    doc = load_yaml(path)
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("overrides", {}), dict):
        raise ConfigError("a preset is a mapping with proxy: and overrides: {...}", file=str(path), line=1)
    if data.get("proxy") != proxy:
        raise doc.error(f"this preset is for proxy {data.get('proxy')!r}, not {proxy!r}", ("proxy",))
    return dict(data.get("overrides") or {})
