"""Fast paths for ``weight * f(alpha * x + shift) + bias``.

* :func:`fast_pointwise` (f = erf or tanh): a custom autograd function that saves only the
  input and the parameters and recomputes ``alpha * x + shift`` and ``f`` in backward with
  the analytic derivative.

  - Eager: forward and backward each work in one fresh buffer, in place.
  - Traced by ``torch.compile`` (and when a double backward is being built): a functional
    backward in two passes that read only ``grad`` and ``x`` (one for the per-channel sums,
    taken in blocks of rows, one for the input gradient), written so inductor neither stores
    an intermediate nor evaluates a transcendental twice per pass; tanh is built on
    ``exp2`` (inductor's own CPU tanh is about 4x slower).
* :func:`compiled_formula`: the whole formula through ``torch.compile``, one compiled
  function per element-wise function (erf/tanh through the autograd function above,
  anything else through plain autograd).

``benchmarks/bench_layers.py`` measures all of it against LayerNorm.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from funcsearch.layers.functions import ElementwiseFn

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

Formula = Callable[[Tensor, Tensor, "Tensor | None", "Tensor | None", "Tensor | None"], Tensor]


def plain_formula(fn: ElementwiseFn, x: Tensor, alpha: Tensor, shift: Tensor | None,
                  weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """The unified form written out; autograd does the rest (the reference)."""
    z = x * alpha
    if shift is not None:
        z = z + shift
    y = fn(z)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def fast_pointwise(x: Tensor, alpha: Tensor, shift: Tensor | None, weight: Tensor | None,
                   bias: Tensor | None, kind: str) -> Tensor:
    """``weight * f(alpha * x + shift) + bias`` with ``f = erf`` or ``tanh`` (None = absent)."""
    if kind not in ("erf", "tanh"):
        raise ValueError(f"no fast path for {kind!r}")
    return _FastPointwise.apply(x, alpha, shift, weight, bias, kind)


class _FastPointwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, alpha: Tensor, shift: Tensor | None,
                weight: Tensor | None, bias: Tensor | None, kind: str) -> Tensor:
        if torch.compiler.is_compiling():  # traced: functional, inductor fuses it into one loop
            z = x * alpha if shift is None else x * alpha + shift
            y = torch.erf(z) if kind == "erf" else tanh_exp2(z)
            if weight is not None:
                y = y * weight
            if bias is not None:
                y = y + bias
        else:
            y = x * alpha  # fresh buffer: everything below is in place
            if shift is not None:
                y.add_(shift)
            y.erf_() if kind == "erf" else y.tanh_()
            if weight is not None:
                y.mul_(weight)
            if bias is not None:
                y.add_(bias)
        ctx.kind = kind
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, alpha, shift, weight)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, alpha, shift, weight = ctx.saved_tensors
        need = ctx.needs_input_grad[:5]
        functional = torch.is_grad_enabled() or torch.compiler.is_compiling()
        backward = _backward_functional if functional else _backward_inplace
        return (*backward(ctx.kind, grad, x, alpha, shift, weight, ctx.has_bias, need), None)


def _channels(x: Tensor, shift: Tensor | None, weight: Tensor | None) -> tuple[int, int]:
    """(number of channels C, number of trailing channel dims) from the per-channel params."""
    for p in (weight, shift):
        if p is not None and p.dim() > 0:
            return p.numel(), p.dim()
    return x.shape[-1] if x.dim() else 1, min(1, x.dim())


def _backward_inplace(kind: str, grad: Tensor, x: Tensor, alpha: Tensor, shift: Tensor | None,
                      weight: Tensor | None, has_bias: bool, need: tuple[bool, ...]
                      ) -> tuple[Tensor | None, ...]:
    """Eager backward in one fresh buffer (no graph is being recorded).

    Large fresh allocations cost page faults on CPU, so erf's backward recomputes
    ``alpha * x + s`` into the same buffer rather than allocating a second one.
    """
    need_x, need_alpha, need_shift, need_weight, need_bias = need
    channels, _ = _channels(x, shift, weight)

    def z_into(out: Tensor | None = None) -> Tensor:
        out = x * alpha if out is None else torch.mul(x, alpha, out=out)
        return out if shift is None else out.add_(shift)

    g_weight = g_bias = None
    if has_bias and need_bias:
        like = weight if weight is not None else (shift if shift is not None and shift.dim() else None)
        g_bias = _rows_sum(grad, channels, like)
    buffer = z_into()
    if kind == "erf":
        if weight is not None and need_weight:
            g_weight = _rows_sum(buffer.erf_().mul_(grad), channels, weight)
            z_into(buffer)
        # exp(-z^2) = f'(z) / (2/sqrt(pi)); -z^2 in one pass
        torch.addcmul(buffer.new_zeros(()), buffer, buffer, value=-1.0, out=buffer).exp_()
        scale = TWO_OVER_SQRT_PI
    else:
        t = buffer.tanh_()
        if weight is not None and need_weight:
            g_weight = _rows_sum(t * grad, channels, weight)
        t.mul_(t).neg_().add_(1.0)  # f'(z) = 1 - tanh^2
        scale = 1.0
    gz = buffer.mul_(grad)
    gz.mul_(weight * scale if weight is not None else scale)
    g_shift = None
    if shift is not None and need_shift:
        g_shift = gz.sum() if shift.dim() == 0 else _rows_sum(gz, channels, shift)
        g_shift = g_shift.to(shift.dtype).reshape(shift.shape)
    g_alpha = None
    if need_alpha:
        g_alpha = torch.dot(gz.reshape(-1), x.reshape(-1).to(gz.dtype)).to(alpha.dtype).reshape(alpha.shape)
    g_x = gz.mul_(alpha) if need_x else None
    return g_x, g_alpha, g_shift, g_weight, g_bias


def _rows_sum(t: Tensor, channels: int, like: Tensor | None) -> Tensor:
    """Sum over every leading (row) dim, shaped and typed like the parameter ``like``."""
    total = t.reshape(-1, channels).sum(0)
    if like is None:
        return total
    return total.to(like.dtype).reshape(like.shape)


def _backward_functional(kind: str, grad: Tensor, x: Tensor, alpha: Tensor,
                         shift: Tensor | None, weight: Tensor | None, has_bias: bool,
                         need: tuple[bool, ...]) -> tuple[Tensor | None, ...]:
    """Differentiable backward (double backward works) laid out for inductor fusion.

    Two passes over the data, each reading only ``grad`` and ``x``: one takes every
    per-channel sum (blocks of rows, then blocks, so the sums walk memory in order), the
    other writes the input gradient. Inductor on CPU stores an intermediate that contains
    ``exp``/``tanh`` and has two users (a full extra write and read); the sums therefore use
    ``exp2`` and a tanh built on it, which it recomputes inside the one kernel instead.
    """
    need_x, need_alpha, need_shift, need_weight, need_bias = need
    channels, channel_dims = _channels(x, shift, weight)
    scale = TWO_OVER_SQRT_PI if kind == "erf" else 1.0
    z = x * alpha if shift is None else x * alpha + shift

    blocks = x.shape[0] if x.dim() > channel_dims + 1 else 1

    def block_sum(t: Tensor) -> Tensor:  # per-channel sums, shape (C,)
        return t.reshape(blocks, -1, channels).sum(1).sum(0)

    def shaped(t: Tensor, like: Tensor) -> Tensor:
        return t.to(like.dtype).reshape(like.shape)

    # pass 1: per-channel sums
    if kind == "erf":
        d = torch.exp2(-(z * z) * LOG2_E)  # f'(z) / scale
        shared = torch.compiler.is_compiling() and z.dtype != torch.float64
        f = erf_from_gaussian(z, d) if shared else torch.erf(z)
    else:
        f = tanh_exp2(z) if torch.compiler.is_compiling() else torch.tanh(z)
        d = 1.0 - f * f
    w_scale = scale if weight is None else weight * scale
    g_alpha = None
    if need_alpha:
        g_alpha = shaped((block_sum(grad * d * x) * w_scale).sum(), alpha)
    g_shift = None
    if shift is not None and need_shift:
        sums = block_sum(grad * d) * w_scale
        g_shift = shaped(sums if shift.dim() else sums.sum(), shift)
    g_weight = None
    if weight is not None and need_weight:
        g_weight = shaped(block_sum(grad * f), weight)
    g_bias = None
    if has_bias and need_bias:
        like = weight if weight is not None else shift
        g_bias = block_sum(grad) if like is None or like.dim() == 0 else shaped(block_sum(grad), like)

    # pass 2: input gradient
    g_x = None
    if need_x:
        per_channel = alpha * scale if weight is None else weight * (alpha * scale)
        g_x = grad * d * per_channel
    return g_x, g_alpha, g_shift, g_weight, g_bias


LOG2_E = 1.0 / math.log(2.0)
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf_from_gaussian(z: Tensor, gaussian: Tensor) -> Tensor:
    """erf(z) given ``exp(-z^2)``: Abramowitz-Stegun 7.1.26 (absolute error < 1.5e-7).

    The same formula ATen's vectorized float erf evaluates (its CPU kernels and inductor's
    generated code), written out so the derivative's ``exp(-z^2)`` is computed only once.
    """
    t = 1.0 / (1.0 + _ERF_P * z.abs())
    a1, a2, a3, a4, a5 = _ERF_A
    poly = t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))
    return torch.copysign(1.0 - poly * gaussian, z)


def tanh_exp2(z: Tensor) -> Tensor:
    """tanh from ``exp2`` (inductor's own tanh is several times slower on CPU).

    ``sign(z) * (1 - t) / (1 + t)`` with ``t = 2^(-2|z| log2 e)``; below ``|z| < 0.125``,
    where ``1 - t`` would lose digits, the odd Taylor polynomial to ``z^9``.
    """
    a = z.abs()
    t = torch.exp2(a * (-2.0 * LOG2_E))
    large = torch.copysign((1.0 - t) / (1.0 + t), z)
    z2 = z * z
    small = z * (1.0 + z2 * (-1.0 / 3 + z2 * (2.0 / 15 + z2 * (-17.0 / 315 + z2 * (62.0 / 2835)))))
    return torch.where(a < 0.125, small, large)


# --------------------------------------------------------------------------- torch.compile
_COMPILED: dict[Any, Formula] = {}


def compiled_formula(key: Any, fn: ElementwiseFn, fast_kind: str | None) -> Formula:
    """The formula for ``fn`` through ``torch.compile``, built once per ``key``.

    Each function gets its own code object, so dynamo's per-code cache (and its recompile
    limit) is per function, not shared by every candidate a long-lived worker trains.
    """
    compiled = _COMPILED.get(key)
    if compiled is None:
        if fast_kind is not None:
            def formula(x: Tensor, alpha: Tensor, shift: Tensor | None, weight: Tensor | None,
                        bias: Tensor | None) -> Tensor:
                return _FastPointwise.apply(x, alpha, shift, weight, bias, fast_kind)
        else:
            def formula(x: Tensor, alpha: Tensor, shift: Tensor | None, weight: Tensor | None,
                        bias: Tensor | None) -> Tensor:
                return plain_formula(fn, x, alpha, shift, weight, bias)
        code = formula.__code__.replace(co_name=f"pointwise_{len(_COMPILED)}")
        unique = types.FunctionType(code, formula.__globals__, code.co_name,
                                    formula.__defaults__, formula.__closure__)
        compiled = torch.compile(unique)
        _COMPILED[key] = compiled
    return compiled
