"""The point-wise layer (the paper's unified form), its named variants and the norm factory.

``PointwiseNorm`` computes ``y = gamma * f(alpha * x + s) + beta`` over the trailing ``dim``
channels (PAPER_METHODS.md section 1). ``make_norm`` is the one factory every norm site is
built through: ``"layernorm"`` / ``"rmsnorm"`` give the classic baselines, anything else a
``PointwiseNorm``.

Speed: erf and tanh use :func:`funcsearch.layers.fast.fast_pointwise` (saves only the
input) on inputs large enough for it to pay. ``compile=True`` runs the formula through
``torch.compile``. It is off by default: on this project's CPU (one thread) the first step
of the default ViT proxy took 14 s with it and its steps were no faster (25.9 vs 25.8 ms),
because the proxy's norms are small and their cost is per-call overhead, not arithmetic;
every new candidate expression pays 3-6 s of compilation again. Turn it on for large
activations (``benchmarks/bench_layers.py`` shows the gain on a 64x65x256 input). Under
``torch.compile`` float32 erf and tanh (and their derivatives) are evaluated by inline
approximations accurate to about 5 float32 ulp (max abs error 3.2e-7), see
:mod:`funcsearch.layers.fast`; eager and float64 use torch's own functions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from funcsearch.errors import InputError
from funcsearch.layers.fast import compiled_formula, fast_pointwise, plain_formula
from funcsearch.layers.functions import (
    NORM_NAMES,
    FunctionLike,
    from_expression,
    resolve_pointwise,
)

ShiftKind = Literal["scalar", "vector", "none"]

COMPILE_DEFAULT = False
"""Whether point-wise layers use ``torch.compile`` unless told otherwise (see module doc)."""

FAST_MIN_NUMEL: dict[str, int] = {"erf": 1 << 16, "tanh": 1 << 17}
"""Eager inputs smaller than this run plain autograd: below it the custom function's Python
overhead outweighs its savings (measured crossover on one CPU thread: about 50k elements
for erf, 130k for tanh; the ViT proxy's norms see 32x16x64 = 32k)."""


def normalise_shift(shift: str | None) -> ShiftKind:
    """``"scalar"``, ``"vector"`` or ``"none"`` (``None`` and ``"none"`` mean no shift)."""
    if shift is None or shift == "none":
        return "none"
    if shift in ("scalar", "vector"):
        return shift  # type: ignore[return-value]
    raise InputError(f"must be 'scalar', 'vector' or None/'none', got {shift!r}", field="shift")


def _shape(dim: int | Sequence[int]) -> tuple[int, ...]:
    shape = (dim,) if isinstance(dim, int) else tuple(dim)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise InputError(f"must be a positive int (or a shape of them), got {dim!r}", field="dim")
    return shape


class PointwiseNorm(nn.Module):
    """``y = gamma * f(alpha * x + s) + beta`` over the trailing ``dim`` channels.

    ``alpha``: learnable scalar, init ``alpha_init`` (0.5). ``shift`` (s): learnable scalar
    (``"scalar"``, default) or per-channel vector (``"vector"``), init 0, or absent
    (``None``/``"none"``). ``weight``/``bias`` (gamma/beta, named as in LayerNorm so weight-
    decay rules and state-dict tooling treat them alike): per-channel, init 1 and 0; absent
    with ``affine=False``; ``bias=False`` keeps gamma only (LayerNorm's ``bias=False``).
    ``fn``: see :data:`funcsearch.layers.functions.FunctionLike`.
    """

    eps = float("nan")
    """No epsilon here. NaN (never equal to anything) so code that compares the ``eps`` of two
    norms to choose a fused LayerNorm kernel, e.g. ``nn.TransformerEncoderLayer``'s inference
    fast path, sees a mismatch and runs this module instead."""

    def __init__(self, fn: FunctionLike, dim: int | Sequence[int], alpha_init: float = 0.5,
                 shift: str | None = "scalar", affine: bool = True, *, bias: bool = True,
                 compile: bool = COMPILE_DEFAULT) -> None:
        super().__init__()
        self.function = resolve_pointwise(fn)
        self.normalized_shape = _shape(dim)
        try:
            alpha_value = float(alpha_init)
        except (TypeError, ValueError, OverflowError):
            alpha_value = math.nan
        if isinstance(alpha_init, bool) or not math.isfinite(alpha_value):
            shown = repr(alpha_init)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise InputError(f"must be a finite number, got {shown}", field="alpha_init")
        self.alpha_init = alpha_value
        self.shift_kind: ShiftKind = normalise_shift(shift)
        self.affine = bool(affine)
        self.alpha = nn.Parameter(torch.empty(()))
        if self.shift_kind == "scalar":
            self.shift = nn.Parameter(torch.empty(()))
        elif self.shift_kind == "vector":
            self.shift = nn.Parameter(torch.empty(self.normalized_shape))
        else:
            self.register_parameter("shift", None)
        self.register_parameter(
            "weight", nn.Parameter(torch.empty(self.normalized_shape)) if self.affine else None)
        self.register_parameter(
            "bias", nn.Parameter(torch.empty(self.normalized_shape)) if self.affine and bias else None)
        self.compile = bool(compile)
        self.compile_error: str | None = None
        self.reset_parameters()

    @property
    def fn_name(self) -> str:
        return self.function.name

    @property
    def expression(self) -> str | None:
        return self.function.expression

    @property
    def fn(self):  # noqa: ANN201 - the element-wise callable
        return self.function.fn

    def __getstate__(self) -> dict[str, object]:
        """Pickle (and deepcopy) the expression text, not the compiled closure; it is
        compiled again through the safe parser on load."""
        state = self.__dict__.copy()
        function = self.function
        if function.expression is not None:
            state["function"] = (function.name, function.expression)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        function = state.get("function")
        if isinstance(function, tuple):
            name, expression = function
            state["function"] = from_expression(expression, name)
        super().__setstate__(state)

    def reset_parameters(self) -> None:
        """The paper's initial values: alpha = alpha_init, s = 0, gamma = 1, beta = 0."""
        with torch.no_grad():
            self.alpha.fill_(self.alpha_init)
            if self.shift is not None:
                self.shift.zero_()
            if self.weight is not None:
                self.weight.fill_(1.0)
            if self.bias is not None:
                self.bias.zero_()

    def plain_forward(self, x: Tensor) -> Tensor:
        """The formula with plain autograd: the reference the fast paths are tested against."""
        return plain_formula(self.function.fn, x, self.alpha, self.shift, self.weight, self.bias)

    def eager_forward(self, x: Tensor) -> Tensor:
        """The formula without our own ``torch.compile``: the erf/tanh fast path for large
        inputs and inside a compiled region, plain autograd otherwise."""
        kind = self.function.fast_kind
        if kind is not None and (torch.compiler.is_compiling() or x.numel() >= FAST_MIN_NUMEL[kind]):
            return fast_pointwise(x, self.alpha, self.shift, self.weight, self.bias, kind)
        return self.plain_forward(x)

    def forward(self, x: Tensor) -> Tensor:
        shape = self.normalized_shape
        if tuple(x.shape[x.dim() - len(shape):]) != shape:
            raise InputError(f"expected trailing dims {shape}, got input of shape "
                             f"{tuple(x.shape)}", field=f"{type(self).__name__}({self.fn_name!r})")
        if self.compile and self.compile_error is None and not torch.compiler.is_compiling():
            return self._compiled_forward(x)
        return self.eager_forward(x)

    def _compiled_forward(self, x: Tensor) -> Tensor:
        function = self.function
        key = function.expression if function.expression is not None else function.fn
        formula = compiled_formula(key, function.fn, function.fast_kind)
        try:
            return formula(x, self.alpha, self.shift, self.weight, self.bias)
        except Exception as error:  # a compiler problem must not end a trial: run eager
            self.compile_error = f"{type(error).__name__}: {error}".splitlines()[0]
            warnings.warn(f"torch.compile failed for {self.fn_name!r}, running eager: "
                          f"{self.compile_error}", RuntimeWarning, stacklevel=2)
            return self.eager_forward(x)

    def extra_repr(self) -> str:
        parts = [repr(self.fn_name)]
        if self.expression is not None and self.expression != self.fn_name:
            parts.append(f"expression={self.expression!r}")
        shape = self.normalized_shape
        parts.append(f"dim={shape[0] if len(shape) == 1 else shape}")
        parts.append(f"alpha_init={self.alpha_init:g}")
        parts.append(f"shift={self.shift_kind}")
        if not self.affine:
            parts.append("affine=False")
        elif self.bias is None:
            parts.append("bias=False")
        if self.compile:
            parts.append("compile=True")
        return ", ".join(parts)


class Derf(PointwiseNorm):
    """Dynamic erf: ``gamma * erf(alpha * x + s) + beta`` (scalar shift by default)."""

    def __init__(self, dim: int | Sequence[int], alpha_init: float = 0.5,
                 shift: str | None = "scalar", affine: bool = True, *, bias: bool = True,
                 compile: bool = COMPILE_DEFAULT) -> None:
        super().__init__("erf", dim, alpha_init, shift, affine, bias=bias, compile=compile)


class DyT(PointwiseNorm):
    """Dynamic tanh: ``gamma * tanh(alpha * x) + beta`` (no shift, as in the DyT paper)."""

    def __init__(self, dim: int | Sequence[int], alpha_init: float = 0.5, affine: bool = True,
                 *, bias: bool = True, compile: bool = COMPILE_DEFAULT) -> None:
        super().__init__("tanh", dim, alpha_init, None, affine, bias=bias, compile=compile)


def make_norm(function: FunctionLike, dim: int | Sequence[int], *, shift: str | None = "scalar",
              alpha_init: float = 0.5, affine: bool = True, eps: float = 1e-6,
              bias: bool = True, compile: bool = COMPILE_DEFAULT) -> nn.Module:
    """The one norm factory: ``"layernorm"``/``"rmsnorm"`` or any point-wise function.

    ``eps`` applies to the two norms only; ``shift``, ``alpha_init`` and ``compile`` to
    point-wise layers only; ``affine=False`` drops the learnable per-channel scale/offset of
    either kind, ``bias=False`` only the offset.
    """
    if isinstance(function, str) and function.strip().lower() in NORM_NAMES:
        normalized = _shape(dim)
        if function.strip().lower() == "layernorm":
            return nn.LayerNorm(normalized, eps=eps, elementwise_affine=affine, bias=bias)
        return nn.RMSNorm(normalized, eps=eps, elementwise_affine=affine)
    return PointwiseNorm(function, dim, alpha_init=alpha_init, shift=shift, affine=affine,
                         bias=bias, compile=compile)


class ChannelsFirstPointwiseNorm(PointwiseNorm):
    """:class:`PointwiseNorm` over dim 1 of a ``(N, C, ...)`` input (convolutional stages, e.g.
    timm/ConvNeXt's ``LayerNorm2d``): the channel axis is moved last, normalised, moved back.
    Parameters and state-dict keys are those of :class:`PointwiseNorm`."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise InputError(f"expected a (N, C, ...) input, got shape {tuple(x.shape)}",
                             field=f"{type(self).__name__}({self.fn_name!r})")
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", channels_first=True"


class NormLayer:
    """A timm-style ``norm_layer``: ``NormLayer("erf")(num_features, eps=1e-6)`` builds a
    point-wise layer, so ``SomeViT(norm_layer=norm_layer("erf"))`` swaps every norm a model
    constructor builds. ``eps``, ``elementwise_affine``/``affine``, ``bias``, ``device`` and
    ``dtype`` are accepted as ``nn.LayerNorm`` takes them (``eps`` is ignored: no statistics).
    Picklable (it holds the function's text, not a closure, when ``fn`` is text)."""

    def __init__(self, fn: FunctionLike, *, shift: str | None = "scalar", alpha_init: float = 0.5,
                 channels_first: bool = False, compile: bool = COMPILE_DEFAULT) -> None:
        resolve_pointwise(fn)  # fail now, naming the function, not inside a model constructor
        self.fn, self.shift, self.alpha_init = fn, normalise_shift(shift), float(alpha_init)
        self.channels_first, self.compile = bool(channels_first), bool(compile)

    def __call__(self, num_features: int | Sequence[int], eps: float | None = None,
                 elementwise_affine: bool = True, bias: bool = True, *, affine: bool | None = None,
                 device: object = None, dtype: object = None, **_: object) -> PointwiseNorm:
        cls = ChannelsFirstPointwiseNorm if self.channels_first else PointwiseNorm
        layer = cls(self.fn, num_features, alpha_init=self.alpha_init, shift=self.shift,
                    affine=elementwise_affine if affine is None else affine, bias=bias,
                    compile=self.compile)
        if device is not None or dtype is not None:
            layer.to(device=device, dtype=dtype)
        return layer

    def __repr__(self) -> str:
        return (f"norm_layer({self.fn!r}, shift={self.shift!r}, alpha_init={self.alpha_init:g}"
                + (", channels_first=True" if self.channels_first else "") + ")")


def norm_layer(fn: FunctionLike, *, shift: str | None = "scalar", alpha_init: float = 0.5,
               channels_first: bool = False, compile: bool = COMPILE_DEFAULT) -> NormLayer:
    """A ``norm_layer=`` factory for model constructors (timm and others): see :class:`NormLayer`."""
    return NormLayer(fn, shift=shift, alpha_init=alpha_init, channels_first=channels_first,
                     compile=compile)
