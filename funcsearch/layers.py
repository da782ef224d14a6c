"""Point-wise layers that replace normalization: the unified form and the norm factory.

``PointwiseNorm`` computes ``y = gamma * f(alpha * x + s) + beta`` (PAPER_METHODS.md section 1)
over the trailing ``dim`` channels. ``make_norm`` is the one factory every norm site is built
through: ``"layernorm"`` / ``"rmsnorm"`` give the classic baselines, anything else a
``PointwiseNorm``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union

import torch
from torch import Tensor, nn

from funcsearch.errors import ExpressionError, InputError

ShiftKind = Literal["scalar", "vector", "none"]
ElementwiseFn = Callable[[Tensor], Tensor]
FunctionLike = Union[str, ElementwiseFn, Any]  # text, callable, or object with ``.expression``

#: functions with a hand-written fast path (analytic derivative, recomputed in backward)
FAST_FUNCTIONS: tuple[str, ...] = ("erf", "tanh")
NORM_NAMES: tuple[str, ...] = ("layernorm", "rmsnorm")
_FALLBACK_NAMES = {"erf": "erf", "derf": "erf", "tanh": "tanh", "dyt": "tanh"}
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


# --------------------------------------------------------------------------- resolution
def _normalise_shift(shift: str | None) -> ShiftKind:
    if shift is None or shift == "none":
        return "none"
    if shift in ("scalar", "vector"):
        return shift  # type: ignore[return-value]
    raise InputError(f"shift must be 'scalar', 'vector' or None, got {shift!r}", field="shift")


def resolve_pointwise(fn: FunctionLike) -> tuple[str, str | None, ElementwiseFn]:
    """Turn ``fn`` into ``(name, expression text or None, element-wise torch function)``.

    ``fn`` may be a candidate-like object (``.expression``, optional ``.name``), a built-in
    name (``erf``, ``derf``, ``tanh``, ``dyt``, ...), expression text in ``x``, or a python
    callable on tensors. Raises ``ExpressionError`` for text that is neither.
    """
    if isinstance(fn, str):
        return _resolve_text(fn, None)
    expression = getattr(fn, "expression", None)
    if isinstance(expression, str):
        return _resolve_text(expression, getattr(fn, "name", None))
    if callable(fn):
        name = getattr(fn, "__name__", None) or type(fn).__name__
        return name, None, fn
    raise InputError(
        f"function must be a name, an expression, a candidate or a callable, got {type(fn).__name__}",
        field="function",
    )


def _resolve_text(text: str, display_name: str | None) -> tuple[str, str | None, ElementwiseFn]:
    key = text.strip()
    if key.lower() in NORM_NAMES:
        raise InputError(
            f"{key!r} is a normalization layer, not a point-wise function; use make_norm()",
            field="function",
        )
    try:  # lazily: the symbolic core sits left of layers in the data flow
        from funcsearch.named import resolve_function
    except ImportError:
        resolve_function = None  # type: ignore[assignment]
    if resolve_function is not None:
        name, expression = resolve_function(key)
        if expression is None:
            raise InputError(f"{key!r} is not a point-wise function", field="function")
        fast = _fast_kind(name, expression)
        if fast is not None:
            return display_name or name, expression, _FAST_TORCH[fast]
        from funcsearch.expressions import compile_function

        return display_name or name, expression, compile_function(expression)
    fast = _FALLBACK_NAMES.get(key.lower()) or _fast_kind(key, key)
    if fast is None:
        raise ExpressionError(
            f"unknown function {key!r} (the expression compiler is not available; "
            f"known: {', '.join(sorted(_FALLBACK_NAMES))})",
            field="function",
        )
    return display_name or fast, f"{fast}(x)", _FAST_TORCH[fast]


_FAST_TORCH: dict[str, ElementwiseFn] = {"erf": torch.erf, "tanh": torch.tanh}


def _fast_kind(name: str | None, expression: str | None) -> str | None:
    """``"erf"``/``"tanh"`` when the function is exactly one of them, else ``None``."""
    if expression is not None:
        compact = expression.replace(" ", "")
        for kind in FAST_FUNCTIONS:
            if compact == f"{kind}(x)":
                return kind
        return None
    return name if name in FAST_FUNCTIONS else None


# --------------------------------------------------------------------------- fast path
def _sum_to(t: Tensor, shape: torch.Size) -> Tensor:
    """Sum ``t`` over its leading dims so it has the (trailing) ``shape``."""
    if t.shape == shape:
        return t
    return t.reshape(-1, *shape).sum(0) if len(shape) else t.sum()


class _FastPointwise(torch.autograd.Function):
    """``weight * f(alpha * x + shift) + bias`` for f in {erf, tanh}.

    Saves only the inputs and recomputes ``alpha * x + shift`` and ``f`` in backward, with
    the analytic derivative. The backward is built from differentiable torch ops on the
    saved inputs, so double backward is correct too.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, alpha: Tensor, shift: Tensor | None,
                weight: Tensor | None, bias: Tensor | None, kind: str) -> Tensor:
        z = x * alpha if shift is None else torch.addcmul(shift, x, alpha)
        y = torch.erf(z) if kind == "erf" else torch.tanh(z)
        if weight is not None:
            y = y * weight if bias is None else torch.addcmul(bias, y, weight)
        elif bias is not None:
            y = y + bias
        ctx.kind = kind
        ctx.save_for_backward(x, alpha, shift, weight)
        ctx.has_bias = bias is not None
        ctx.bias_shape = None if bias is None else bias.shape
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, alpha, shift, weight = ctx.saved_tensors
        need_x, need_alpha, need_shift, need_weight, need_bias, _ = ctx.needs_input_grad
        z = x * alpha if shift is None else torch.addcmul(shift, x, alpha)
        if ctx.kind == "erf":
            fz = torch.erf(z) if need_weight else None
            dfdz = torch.exp(-z * z) * _TWO_OVER_SQRT_PI
        else:
            fz = torch.tanh(z)
            dfdz = 1.0 - fz * fz
        gz = grad * dfdz if weight is None else grad * weight * dfdz
        gx = gz * alpha if need_x else None
        galpha = (gz * x).sum().reshape(alpha.shape) if need_alpha else None
        gshift = _sum_to(gz, shift.shape) if (shift is not None and need_shift) else None
        gweight = _sum_to(grad * fz, weight.shape) if (weight is not None and need_weight) else None
        gbias = _sum_to(grad, ctx.bias_shape) if (ctx.has_bias and need_bias) else None
        return gx, galpha, gshift, gweight, gbias, None


# --------------------------------------------------------------------------- the layer
class PointwiseNorm(nn.Module):
    """``y = gamma * f(alpha * x + s) + beta`` over the trailing ``dim`` channels.

    ``alpha`` is a learnable scalar (init ``alpha_init``), ``s`` a learnable scalar or
    per-channel vector (init 0) or absent, ``gamma``/``beta`` (named ``weight``/``bias``
    like LayerNorm's) per-channel, init 1 and 0, absent when ``affine=False``.
    ``f = erf`` and ``f = tanh`` use a fast path that keeps only ``x`` for backward;
    ``compile=True`` wraps the element-wise part in ``torch.compile`` (eager fallback if
    compilation fails).
    """

    def __init__(self, fn: FunctionLike, dim: int | Sequence[int], alpha_init: float = 0.5,
                 shift: str | None = "scalar", affine: bool = True, *,
                 compile: bool = False) -> None:
        super().__init__()
        self.fn_name, self.expression, self.fn = resolve_pointwise(fn)
        self.fast_kind = _fast_kind(self.fn_name, self.expression) if self.fn in _FAST_TORCH.values() else None
        shape = (dim,) if isinstance(dim, int) else tuple(int(d) for d in dim)
        if not shape or any(d <= 0 for d in shape):
            raise InputError(f"dim must be a positive int (or shape), got {dim!r}", field="dim")
        self.normalized_shape = shape
        self.alpha_init = float(alpha_init)
        if not math.isfinite(self.alpha_init):
            raise InputError(f"alpha_init must be finite, got {alpha_init!r}", field="alpha_init")
        self.shift_kind: ShiftKind = _normalise_shift(shift)
        self.affine = bool(affine)
        self.alpha = nn.Parameter(torch.full((), self.alpha_init))
        if self.shift_kind == "scalar":
            self.shift = nn.Parameter(torch.zeros(()))
        elif self.shift_kind == "vector":
            self.shift = nn.Parameter(torch.zeros(shape))
        else:
            self.register_parameter("shift", None)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(shape))
            self.bias = nn.Parameter(torch.zeros(shape))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.compile = bool(compile)
        self._compiled: Callable[..., Tensor] | None = None
        self._compile_failed: str | None = None

    def reset_parameters(self) -> None:
        """Back to the paper's initial values (alpha_init, s=0, gamma=1, beta=0)."""
        with torch.no_grad():
            self.alpha.fill_(self.alpha_init)
            if self.shift is not None:
                self.shift.zero_()
            if self.weight is not None:
                self.weight.fill_(1.0)
                self.bias.zero_()

    def plain_forward(self, x: Tensor) -> Tensor:
        """The formula with plain autograd (reference for the fast path, and for generic f)."""
        z = x * self.alpha
        if self.shift is not None:
            z = z + self.shift
        y = self.fn(z)
        if self.weight is not None:
            y = y * self.weight + self.bias
        return y

    def _eager(self, x: Tensor) -> Tensor:
        if self.fast_kind is not None:
            return _FastPointwise.apply(x, self.alpha, self.shift, self.weight, self.bias,
                                        self.fast_kind)
        return self.plain_forward(x)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-len(self.normalized_shape):] != torch.Size(self.normalized_shape):
            raise InputError(
                f"input's trailing shape {tuple(x.shape[-len(self.normalized_shape):])} "
                f"does not match dim {self.normalized_shape}", field="input"
            )
        if self.compile and self._compile_failed is None:
            return self._compiled_forward(x)
        return self._eager(x)

    def _compiled_forward(self, x: Tensor) -> Tensor:
        if self._compiled is None:
            self._compiled = torch.compile(self.plain_forward, dynamic=None)
        try:
            return self._compiled(x)
        except Exception as error:  # compilation problems must not kill a trial
            self._compile_failed = f"{type(error).__name__}: {error}"
            return self._eager(x)

    def extra_repr(self) -> str:
        parts = [repr(self.fn_name)]
        if self.expression is not None and self.expression != self.fn_name:
            parts.append(f"expression={self.expression!r}")
        parts.append(f"dim={self.normalized_shape[0] if len(self.normalized_shape) == 1 else self.normalized_shape}")
        parts.append(f"alpha_init={self.alpha_init}")
        parts.append(f"shift={self.shift_kind}")
        if not self.affine:
            parts.append("affine=False")
        if self.compile:
            parts.append("compile=True")
        return ", ".join(parts)


class Derf(PointwiseNorm):
    """Dynamic erf: ``gamma * erf(alpha * x + s) + beta`` (scalar shift by default)."""

    def __init__(self, dim: int | Sequence[int], alpha_init: float = 0.5,
                 shift: str | None = "scalar", affine: bool = True, *,
                 compile: bool = False) -> None:
        super().__init__("erf", dim, alpha_init, shift, affine, compile=compile)


class DyT(PointwiseNorm):
    """Dynamic tanh: ``gamma * tanh(alpha * x) + beta`` (no shift, as in the DyT paper)."""

    def __init__(self, dim: int | Sequence[int], alpha_init: float = 0.5,
                 affine: bool = True, *, compile: bool = False) -> None:
        super().__init__("tanh", dim, alpha_init, None, affine, compile=compile)


# --------------------------------------------------------------------------- factory
def make_norm(function: FunctionLike, dim: int, *, shift: str | None = "scalar",
              alpha_init: float = 0.5, affine: bool = True, eps: float = 1e-6,
              compile: bool = False) -> nn.Module:
    """The one norm factory: ``"layernorm"``/``"rmsnorm"`` or any point-wise function.

    ``eps`` applies to the two norms only; ``shift``/``alpha_init``/``compile`` to
    point-wise layers only.
    """
    if isinstance(function, str) and function.strip().lower() == "layernorm":
        return nn.LayerNorm(dim, eps=eps, elementwise_affine=affine)
    if isinstance(function, str) and function.strip().lower() == "rmsnorm":
        return nn.RMSNorm(dim, eps=eps, elementwise_affine=affine)
    return PointwiseNorm(function, dim, alpha_init=alpha_init, shift=shift, affine=affine,
                         compile=compile)
