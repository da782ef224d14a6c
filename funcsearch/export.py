"""Any function as LaTeX, as sympy text, or as a ready-to-paste torch module.

    export_function("erf(x + 1)", "latex")     # \\operatorname{erf}{\\left(x + 1 \\right)}
    export_function("isru", "torch")           # a self-contained nn.Module (no funcsearch needed)
    export_function("erf|translate=+2", "sympy", results="results/property_shift")

A name is looked up in a results folder's trials (``results=``), then among the built-in
names; anything else is parsed as an expression (the safe parser). The torch snippet prints
the formula with torch calls and is checked before it is returned: executed, it must agree
with funcsearch's own compiled function on [-10, 10] (float64, 1e-9) or the snippet falls
back to ``funcsearch.layers.PointwiseNorm`` with the expression text.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import sympy as sp

from funcsearch.errors import InputError
from funcsearch.expressions import parse_expression, to_numpy

EXPORT_FORMATS = ("latex", "sympy", "torch")

__all__ = ["EXPORT_FORMATS", "export_function", "resolve_export", "torch_snippet", "complexity"]


def resolve_export(name: str, results: str | Path | None = None) -> tuple[str, str]:
    """``(name, expression)`` of a results folder's function, a built-in name or an expression."""
    if results is not None:
        from funcsearch.search.store import read_results

        frame = read_results(results)
        rows = frame[frame["candidate"] == name]
        if len(rows):
            expression = rows["expression"].iloc[0]
            if not isinstance(expression, str) or not expression:
                raise InputError(f"{name} is a statistics-based norm: it has no formula to export",
                                 field="NAME")
            return name, expression
    from funcsearch.named import resolve_function

    resolved, expression = resolve_function(name)
    if expression is None:
        raise InputError(f"{resolved} is a statistics-based norm: it has no formula to export", field="NAME")
    return resolved, expression


def complexity(expression: str) -> int:
    """Operation count of the expression's sympy tree (``sympy.count_ops``)."""
    return int(sp.count_ops(parse_expression(expression).expr))


def _class_name(name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name) or ["Pointwise"]
    text = "".join(w[:1].upper() + w[1:] for w in words)
    return ("F" + text if text[0].isdigit() else text)[:40] + "Norm"


class _Printer:
    """sympy's torch printer with the functions it lacks or prints for scalars only."""

    def __init__(self) -> None:
        from sympy.printing.pytorch import TorchPrinter

        class Printer(TorchPrinter):
            def _print_Min(self, expr: sp.Expr) -> str:  # noqa: N802 - sympy's naming
                return self._pair(expr, "max", "torch.minimum")

            def _print_Max(self, expr: sp.Expr) -> str:  # noqa: N802
                return self._pair(expr, "min", "torch.maximum")

            def _pair(self, expr: sp.Expr, bound: str, combine: str) -> str:
                numbers = [a for a in expr.args if a.is_number]
                others = [a for a in expr.args if not a.is_number]
                text = self._print(others[0])
                for other in others[1:]:
                    text = f"{combine}({text}, {self._print(other)})"
                for number in numbers:
                    text = f"torch.clamp({text}, {bound}={float(number)!r})"
                return text

            def _print_Cbrt(self, expr: sp.Expr) -> str:  # noqa: N802
                arg = self._print(expr.args[0])
                return f"(torch.sign({arg}) * _root(torch.abs({arg}), 1 / 3))"

            def _print_Pow(self, expr: sp.Expr, rational: bool = False) -> str:  # noqa: N802
                base, exponent = expr.args
                if exponent.is_number and 0 < exponent < 1:  # a root: finite gradient at 0, as trained
                    return f"_root({self._print(base)}, {float(exponent)!r})"
                if exponent.is_number:
                    return f"torch.pow({self._print(base)}, {float(exponent)!r})"
                return f"torch.pow({self._print(base)}, {self._print(exponent)})"

        self.printer = Printer({"strict": True})

    def __call__(self, expr: sp.Expr) -> str:
        return self.printer.doprint(expr)


def torch_snippet(name: str, expression: str) -> str:
    """A self-contained ``nn.Module`` computing ``gamma * f(alpha * x + s) + beta``."""
    parsed = parse_expression(expression, field=name)
    cls = _class_name(name)
    try:
        body = _Printer()(parsed.expr)
        formula = f"        return {body}"
        snippet = _module(cls, name, parsed.text, formula)
        _verify(snippet, cls, parsed.expr)
        return snippet
    except Exception:  # noqa: BLE001 - the printer lacks a function, or the check failed
        return _fallback(cls, name, parsed.text)


ROOT_HELPER = '''

class _Root(torch.autograd.Function):
    """base ** p for 0 < p < 1 with the gradient 0 where base == 0, as funcsearch trains it: the
    slope is infinite there, and autograd's inf * 0 would turn one exact zero into a NaN step."""

    @staticmethod
    def forward(ctx, base: torch.Tensor, p: float) -> torch.Tensor:
        ctx.p = p
        ctx.save_for_backward(base)
        return torch.pow(base, p)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (base,) = ctx.saved_tensors
        zero = base == 0
        safe = torch.where(zero, torch.ones_like(base), base)
        return torch.where(zero, torch.zeros_like(grad), grad * (ctx.p * safe.pow(ctx.p - 1))), None


def _root(base: torch.Tensor, p: float) -> torch.Tensor:
    return _Root.apply(base, p)
'''


def _module(cls: str, name: str, text: str, formula: str) -> str:
    helper = ROOT_HELPER if "_root(" in formula else ""
    return f'''import torch
from torch import nn
{helper}

class {cls}(nn.Module):
    """y = gamma * f(alpha * x + s) + beta over the last dim, with f(x) = {text}
    ({name}, exported by funcsearch)."""

    def __init__(self, dim: int, alpha_init: float = 0.5, shift: bool = True) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        self.shift = nn.Parameter(torch.zeros(())) if shift else None
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    @staticmethod
    def f(x: torch.Tensor) -> torch.Tensor:
{formula}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.alpha * x if self.shift is None else self.alpha * x + self.shift
        return self.weight * self.f(z) + self.bias
'''


def _fallback(cls: str, name: str, text: str) -> str:
    return f'''from funcsearch.layers import PointwiseNorm

# {name}: f(x) = {text}; y = gamma * f(alpha * x + s) + beta over the last dim
{cls} = lambda dim, alpha_init=0.5, shift="scalar": PointwiseNorm({text!r}, dim, alpha_init=alpha_init,
                                                                 shift=shift)
'''


def _verify(snippet: str, cls: str, expr: sp.Expr) -> None:
    import torch

    namespace: dict[str, object] = {}
    exec(compile(snippet, f"<export {cls}>", "exec"), namespace)  # our own generated text
    grid = np.linspace(-10, 10, 2001)
    reference = to_numpy(expr)(grid)
    points = torch.tensor(np.append(grid, 0.0), dtype=torch.float64, requires_grad=True)
    out = namespace[cls].f(points)  # type: ignore[attr-defined]
    got = out.detach().numpy()[:-1]
    finite = np.isfinite(reference)
    if not np.array_equal(finite, np.isfinite(got)) or not np.allclose(got[finite], reference[finite],
                                                                       rtol=1e-9, atol=1e-9):
        raise ValueError("the printed formula disagrees with the reference")
    if out.requires_grad:  # and it differentiates where the engine's compiled form does
        from funcsearch.expressions import to_torch

        (mine,) = torch.autograd.grad(out.sum(), points)
        engine_points = points.detach().clone().requires_grad_(True)
        (engine,) = torch.autograd.grad(to_torch(expr)(engine_points).sum(), engine_points)
        if not np.array_equal(np.isfinite(mine.numpy()), np.isfinite(engine.numpy())):
            raise ValueError("the printed formula's gradient is not finite where the engine's is")


def export_function(name: str, fmt: str = "latex", *, results: str | Path | None = None) -> str:
    """``name`` (see :func:`resolve_export`) as ``latex``, ``sympy`` text or a ``torch`` module."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(EXPORT_FORMATS)})", field="--format")
    resolved, expression = resolve_export(name, results)
    parsed = parse_expression(expression, field=resolved)
    if fmt == "latex":
        return f"f(x) = {sp.latex(parsed.expr)}\n"
    if fmt == "sympy":
        return f"{sp.sstr(parsed.expr)}\n"
    return torch_snippet(resolved, expression)
