"""Swap every normalization layer of any model for a point-wise layer, one to one.

How a norm's *site* is recognised (used by ``sites=`` and by per-site ``alpha_init``), from
its attribute name, first rule that applies:

1. inside ``nn.TransformerDecoderLayer``: ``norm1`` (self-attention) and ``norm2``
   (cross-attention) are ``"attn"``, ``norm3`` is ``"mlp"``;
2. attribute names in :data:`SITE_NAMES`: e.g. ``norm1`` / ``norm_attn`` / ``ln_1`` /
   ``input_layernorm`` are ``"attn"`` (``nn.TransformerEncoderLayer.norm1``, this
   project's proxies), ``norm2`` / ``norm_mlp`` / ``ln_2`` / ``post_attention_layernorm`` are
   ``"mlp"``, ``norm_final`` / ``ln_f`` / ``fc_norm`` are ``"final"``;
3. otherwise a norm that is not inside an indexed block list (no all-digit part in its
   qualified name, e.g. ``nn.TransformerEncoder.norm``) is ``"final"``, anything else
   ``"other"``.

In a post-norm block (``norm_first=False``) ``norm1`` follows the attention residual; it is
still the attention sub-block's norm, so still ``"attn"``.

Channels-first norms. ``nn.LayerNorm`` normalises the *last* axis; a subclass that overrides
``forward`` to normalise dim 1 of ``(N, C, H, W)`` (timm/ConvNeXt's ``LayerNorm2d``, ConvNeXt's
``LayerNorm(data_format="channels_first")``) gets a :class:`ChannelsFirstPointwiseNorm`, which
scales dim 1 too. Recognised: ``data_format == "channels_first"``, or a class name ending in
``2d``/``3d`` or containing ``ChannelsFirst``. Any other subclass with its own ``forward`` is
refused with an error naming the module (its layout cannot be told), unless ``layouts`` says.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from funcsearch.errors import InputError
from funcsearch.layers.functions import NORM_NAMES, FunctionLike, resolve_pointwise
from funcsearch.layers.pointwise import (COMPILE_DEFAULT, ChannelsFirstPointwiseNorm, PointwiseNorm,
                                        make_norm, normalise_shift)

SITE_KINDS: tuple[str, ...] = ("attn", "mlp", "final", "other")

SITE_NAMES: dict[str, frozenset[str]] = {
    "attn": frozenset({"norm1", "norm_attn", "attn_norm", "norm_attention", "attention_norm",
                       "ln_1", "ln1", "input_layernorm", "norm_sa", "sa_norm",
                       "self_attn_layer_norm", "pre_attn_norm"}),
    "mlp": frozenset({"norm2", "norm_mlp", "mlp_norm", "norm_ffn", "ffn_norm", "norm_ff",
                      "ff_norm", "ln_2", "ln2", "post_attention_layernorm", "pre_mlp_norm"}),
    "final": frozenset({"norm_final", "final_norm", "ln_f", "ln_final", "norm_out", "fc_norm",
                        "final_layernorm", "encoder_norm", "decoder_norm"}),
}
"""Attribute names that identify a norm's site (compared lower-case)."""

DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.LayerNorm, nn.RMSNorm)

AlphaInit = float | Mapping[str, float]
"""A float for every site, or a mapping whose keys are a qualified module name, a glob over
qualified names (``"blocks.0.*"``), a site kind (``"attn"``, ``"mlp"``, ``"final"``,
``"other"``) or ``"default"``; precedence in that order, then the paper's 0.5."""


@dataclass(frozen=True)
class Replacement:
    """One swapped norm: where it was, what it was, what replaced it."""

    name: str            # qualified module name ("" when the model itself was the norm)
    old_type: str        # class name of the replaced module, e.g. "LayerNorm"
    new: nn.Module       # the module now in its place
    site: str            # "attn", "mlp", "final" or "other" (see module doc)
    alpha_init: float | None  # None when the new module is a LayerNorm/RMSNorm


def site_of(name: str, parent: nn.Module | None) -> str:
    """The site kind of the norm at qualified ``name`` whose parent module is ``parent``."""
    attribute = name.rsplit(".", 1)[-1].lower()
    if isinstance(parent, nn.TransformerDecoderLayer) and attribute in ("norm1", "norm2", "norm3"):
        return "mlp" if attribute == "norm3" else "attn"
    for kind, names in SITE_NAMES.items():
        if attribute in names:
            return kind
    inside_block = any(part.isdigit() for part in name.split(".")[:-1])
    return "other" if inside_block else "final"


def is_channels_first(norm: nn.Module, layouts: Mapping[str, str] | None = None, name: str = "") -> bool:
    """Whether ``norm`` normalises dim 1 (channels-first) rather than the last axis.

    ``layouts`` maps a class name or a qualified-name glob to ``"channels_first"`` or
    ``"channels_last"`` and wins; otherwise see the module docstring. Raises an
    ``InputError`` naming the module for a LayerNorm subclass whose layout cannot be told."""
    for key, value in (layouts or {}).items():
        if key == type(norm).__name__ or (name and (key == name or fnmatch.fnmatchcase(name, key))):
            if value not in ("channels_first", "channels_last"):
                raise InputError(f"must be 'channels_first' or 'channels_last', got {value!r}",
                                 field=f"layouts[{key!r}]")
            return value == "channels_first"
    if getattr(norm, "data_format", None) in ("channels_first", "channels_last"):
        return getattr(norm, "data_format") == "channels_first"
    if not isinstance(norm, nn.LayerNorm) or type(norm).forward is nn.LayerNorm.forward:
        return False
    cls = type(norm).__name__.lower()
    if cls.endswith(("2d", "3d")) or "channelsfirst" in cls or "channels_first" in cls:
        return True
    raise InputError(f"{name or '<model>'} ({type(norm).__module__}.{type(norm).__name__}) is a LayerNorm "
                     "subclass with its own forward: which axis it normalises cannot be told; pass "
                     f"layouts={{{type(norm).__name__!r}: 'channels_first'}} (or 'channels_last')",
                     field="layouts")


def convert_norms(model: nn.Module, fn: FunctionLike, *, alpha_init: AlphaInit = 0.5,
                  sites: Collection[str] | None = None, shift: str | None = "scalar",
                  extra_types: tuple[type[nn.Module], ...] = (), bias: bool | None = None,
                  compile: bool = COMPILE_DEFAULT, keep_affine: bool = False,
                  calibrate: object = None, layouts: Mapping[str, str] | None = None,
                  ) -> tuple[nn.Module, list[Replacement]]:
    """Replace every ``nn.LayerNorm``/``nn.RMSNorm`` (and ``extra_types``) of ``model``.

    In place; returns the model (a new module only when ``model`` itself is a norm) and
    what was replaced. ``fn``: any point-wise function (see ``FunctionLike``) or
    ``"layernorm"``/``"rmsnorm"`` (then ``eps`` is kept). ``sites``: only norms whose site
    kind or qualified name (glob) is listed. A replaced norm with ``elementwise_affine=False``
    gets ``affine=False``; ``bias=None`` keeps beta unless the norm was a LayerNorm built
    with ``bias=False``. The new module takes the old one's device, dtype and train/eval
    mode. ``nn.TransformerEncoder``'s nested-tensor fast path is switched off where its
    layers were converted (it would run LayerNorm kernels on the old weights).

    ``keep_affine=True`` copies each replaced norm's gamma and beta (``weight``/``bias``) into
    the new layer instead of re-initialising them to 1 and 0 (fine-tuning a trained model).
    ``calibrate``: one batch (a tensor, or a tuple of the model's positional inputs); the
    model is run on it once before the swap (no gradients) and each new point-wise layer's
    gamma is set per channel so that its output has the old norm's standard deviation on that
    batch (beta then matches the old mean). Channels-first LayerNorm subclasses are handled
    (see the module docstring; ``layouts`` overrides the detection).
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"expected an nn.Module, got {type(model).__name__}", field="model")
    if isinstance(model, torch.jit.ScriptModule):
        raise InputError(f"{type(model).__name__} is a TorchScript (scripted or traced) module: its "
                         "norms are compiled into its graph and cannot be swapped; convert the "
                         "Python model, then script or trace it", field="model")
    types = _norm_types(extra_types)
    shift_kind = normalise_shift(shift)
    target = _target(fn)
    found = _find_norms(model, types)
    _check_patterns("sites", sites, found)
    if isinstance(alpha_init, Mapping):
        _check_alpha_mapping(alpha_init, found)
    elif not _finite(alpha_init):
        raise InputError(f"must be a finite number or a mapping, got {alpha_init!r}",
                         field="alpha_init")

    first = {id(old): is_channels_first(old, layouts, name) for name, _, _, old in found}
    recorded = _record_norms(model, found, calibrate) if calibrate is not None else {}
    replacements: list[Replacement] = []
    built: dict[int, nn.Module] = {}  # a norm shared by two parents stays shared
    for name, parent, attribute, old in found:
        site = site_of(name, parent)
        if sites is not None and not _selected(name, site, sites):
            continue
        alpha = None if isinstance(target, str) else _alpha_for(alpha_init, name, site)
        new = built.get(id(old))
        if new is None:
            new = _build(target, old, alpha, shift_kind, bias, compile, first[id(old)])
            if keep_affine:
                _copy_affine(old, new, name)
            if id(old) in recorded and isinstance(new, PointwiseNorm):
                _match_scale(new, *recorded[id(old)], channels_first=first[id(old)])
            built[id(old)] = new
        if parent is None:
            model = new
        else:
            setattr(parent, attribute, new)
        replacements.append(Replacement(name, type(old).__name__, new, site, alpha))
    _disable_encoder_fast_path(model)
    return model, replacements


# --------------------------------------------------------------------------- helpers
def _norm_types(extra_types: tuple[type[nn.Module], ...]) -> tuple[type[nn.Module], ...]:
    extra = tuple(extra_types) if isinstance(extra_types, (tuple, list)) else (extra_types,)
    for cls in extra:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise InputError(f"expected nn.Module classes, got {cls!r}", field="extra_types")
    return DEFAULT_TYPES + extra


def _target(fn: FunctionLike) -> str | object:
    """``"layernorm"``/``"rmsnorm"`` as text, anything else resolved once for every site."""
    if isinstance(fn, str) and fn.strip().lower() in NORM_NAMES:
        return fn.strip().lower()
    return resolve_pointwise(fn)


def _find_norms(model: nn.Module, types: tuple[type[nn.Module], ...]
                ) -> list[tuple[str, nn.Module | None, str, nn.Module]]:
    """``(qualified name, parent, attribute, module)`` of every norm, in module order."""
    if isinstance(model, types):
        return [("", None, "", model)]
    found: list[tuple[str, nn.Module | None, str, nn.Module]] = []

    def walk(module: nn.Module, prefix: str) -> None:
        for attribute, child in module._modules.items():
            if child is None:
                continue
            name = f"{prefix}{attribute}"
            if isinstance(child, types):
                found.append((name, module, attribute, child))
            else:
                walk(child, name + ".")

    walk(model, "")
    return found


def _matches(pattern: str, name: str, site: str) -> bool:
    return pattern == site or pattern == name or fnmatch.fnmatchcase(name, pattern)


def _selected(name: str, site: str, sites: Collection[str]) -> bool:
    return any(_matches(pattern, name, site) for pattern in sites)


def _describe(found: list[tuple[str, nn.Module | None, str, nn.Module]]) -> str:
    names = [name or "<model>" for name, *_ in found]
    kinds = sorted({site_of(name, parent) for name, parent, _, _ in found})
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"norms found: {shown or 'none'}; their sites: {', '.join(kinds) or 'none'}"


def _check_patterns(field: str, patterns: Collection[str] | None,
                    found: list[tuple[str, nn.Module | None, str, nn.Module]]) -> None:
    if patterns is None:
        return
    if isinstance(patterns, str):
        raise InputError(f"expected a list of site kinds or name globs, got the string {patterns!r}",
                         field=field)
    for pattern in patterns:
        if not any(_matches(pattern, name, site_of(name, parent)) for name, parent, _, _ in found):
            raise InputError(f"{pattern!r} matches no norm ({_describe(found)})", field=field)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_alpha_mapping(mapping: Mapping[str, float],
                         found: list[tuple[str, nn.Module | None, str, nn.Module]]) -> None:
    for key, value in mapping.items():
        if not _finite(value):
            raise InputError(f"must be a finite number, got {value!r}", field=f"alpha_init[{key!r}]")
        if key != "default":
            _check_patterns("alpha_init", [key], found)


def _alpha_for(alpha_init: AlphaInit, name: str, site: str) -> float:
    if not isinstance(alpha_init, Mapping):
        return float(alpha_init)
    if name in alpha_init:
        return float(alpha_init[name])
    for key, value in alpha_init.items():
        if key not in SITE_KINDS and key != "default" and fnmatch.fnmatchcase(name, key):
            return float(value)
    if site in alpha_init:
        return float(alpha_init[site])
    return float(alpha_init.get("default", 0.5))


def _shape_and_affine(old: nn.Module) -> tuple[tuple[int, ...], bool, bool]:
    """(normalized shape, affine, has bias) of a norm module, from its attributes."""
    weight = getattr(old, "weight", None)
    shape = getattr(old, "normalized_shape", None)
    if shape is None and isinstance(weight, torch.Tensor):
        shape = tuple(weight.shape)
    for attribute in ("dim", "hidden_size", "num_features", "d_model"):
        if shape is None and isinstance(getattr(old, attribute, None), int):
            shape = (getattr(old, attribute),)
    if shape is None:
        raise InputError(f"cannot tell the channel count of {type(old).__name__} (no "
                         "normalized_shape, weight, dim or hidden_size)", field="extra_types")
    shape = (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)
    affine = getattr(old, "elementwise_affine", None)
    if affine is None:
        affine = isinstance(weight, torch.Tensor)
    has_bias = not (isinstance(old, nn.LayerNorm) and affine and old.bias is None)
    return shape, bool(affine), has_bias


def _record_norms(model: nn.Module, found: list[tuple[str, nn.Module | None, str, nn.Module]],
                  batch: object) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Each norm's (input, output) on one forward pass of ``batch`` (no gradients)."""
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for _, _, _, old in found:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor, key: int = id(old)) -> None:
            if key not in seen and args and isinstance(args[0], torch.Tensor):
                seen[key] = (args[0].detach(), output.detach())
        handles.append(old.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(*batch) if isinstance(batch, tuple) else model(batch)
    except Exception as error:
        raise InputError(f"the model could not run on the calibration batch: {type(error).__name__}: "
                         f"{error}", field="calibrate") from error
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    missing = [name or "<model>" for name, _, _, old in found if id(old) not in seen]
    if missing:
        raise InputError(f"the calibration batch did not reach {', '.join(missing[:5])}", field="calibrate")
    return seen


def _match_scale(new: PointwiseNorm, x: torch.Tensor, y: torch.Tensor, *, channels_first: bool) -> None:
    """Set gamma (and beta) per channel so that ``new(x)`` has the mean and std of ``y``."""
    if new.weight is None:
        return
    with torch.no_grad():
        if channels_first:
            x, y = x.movedim(1, -1), y.movedim(1, -1)
        shape = new.normalized_shape
        z = new.function.fn(new.alpha * x + (new.shift if new.shift is not None else 0))
        z = z.reshape(-1, *shape).to(torch.float64)
        target = y.reshape(-1, *shape).to(torch.float64)
        spread = z.std(dim=0, unbiased=False)
        gamma = torch.where(spread > 1e-8, target.std(dim=0, unbiased=False) / spread.clamp_min(1e-8),
                            torch.ones_like(spread))
        new.weight.copy_(gamma.to(new.weight.dtype))
        if new.bias is not None:
            new.bias.copy_((target.mean(dim=0) - gamma * z.mean(dim=0)).to(new.bias.dtype))


def _copy_affine(old: nn.Module, new: nn.Module, name: str) -> None:
    """Copy gamma/beta (weight/bias) of the replaced norm where both have them."""
    with torch.no_grad():
        for attribute in ("weight", "bias"):
            source, target = getattr(old, attribute, None), getattr(new, attribute, None)
            if isinstance(source, torch.Tensor) and isinstance(target, torch.Tensor):
                if source.shape != target.shape:
                    raise InputError(f"{name or '<model>'}: {attribute} of shape {tuple(source.shape)} "
                                     f"does not fit {tuple(target.shape)}", field="keep_affine")
                target.copy_(source)


def _build(target: str | object, old: nn.Module, alpha: float | None, shift: str,
           bias: bool | None, compile: bool, channels_first: bool = False) -> nn.Module:
    shape, affine, old_has_bias = _shape_and_affine(old)
    if isinstance(target, str) and channels_first:
        raise InputError(f"{type(old).__name__} is channels-first: replacing it by {target} (channels-last) "
                         "would normalise the wrong axis; choose a point-wise function", field="fn")
    keep_bias = old_has_bias if bias is None else bias
    if isinstance(target, str):
        eps = getattr(old, "eps", None)
        if eps is None and target == "rmsnorm":  # RMSNorm's own default: the dtype's eps
            new = nn.RMSNorm(shape, eps=None, elementwise_affine=affine)
        else:
            new = make_norm(target, shape, affine=affine, bias=keep_bias,
                            eps=1e-6 if eps is None else float(eps))
    else:
        cls = ChannelsFirstPointwiseNorm if channels_first else PointwiseNorm
        new = cls(target, shape, alpha_init=0.5 if alpha is None else alpha,
                  shift=shift, affine=affine, bias=keep_bias, compile=compile)
    tensors = list(old.parameters(recurse=False)) + list(old.buffers(recurse=False))
    if tensors:
        new.to(device=tensors[0].device, dtype=tensors[0].dtype)
    return new.train(old.training)


def _disable_encoder_fast_path(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoder) and not all(
            isinstance(layer.norm1, nn.LayerNorm) and isinstance(layer.norm2, nn.LayerNorm)
            for layer in module.layers if isinstance(layer, nn.TransformerEncoderLayer)
        ):
            module.use_nested_tensor = False
