"""What goes inside a point-wise layer: a name, its expression text and a torch function.

Anything a user can hand to a layer (a candidate, a built-in name, expression text, a python
callable) is resolved here once into a :class:`PointwiseFunction`. Text goes through
``funcsearch.named.resolve_function`` and ``funcsearch.expressions.compile_function``: the
safe parser, never ``eval``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

import torch
from torch import Tensor

from funcsearch.errors import ExpressionError, InputError

ElementwiseFn = Callable[[Tensor], Tensor]
FunctionLike = Union[str, ElementwiseFn, "PointwiseFunction", Any]
"""Expression text or a built-in name, a callable on tensors, or an object with ``.expression``
(e.g. a ``Candidate``; its ``.name`` is kept as the display name)."""

FAST_KINDS: tuple[str, ...] = ("erf", "tanh")
"""Functions with a hand-written fast path (analytic derivative, recomputed in backward)."""

NORM_NAMES: tuple[str, ...] = ("layernorm", "rmsnorm")

_FAST_TORCH: dict[str, ElementwiseFn] = {"erf": torch.erf, "tanh": torch.tanh}
_FAST_CALLABLES: dict[Any, str] = {torch.erf: "erf", torch.special.erf: "erf", torch.tanh: "tanh"}


@dataclass(frozen=True)
class PointwiseFunction:
    """A resolved element-wise function.

    ``name`` is for display and joins (e.g. ``"derf"``, ``"erf|translate=+2"``);
    ``expression`` is the canonical text (None for a python callable); ``fn`` is
    element-wise and differentiable; ``fast_kind`` is ``"erf"``/``"tanh"`` when the function
    is exactly one of them (then the layer uses the fast path).
    """

    name: str
    expression: str | None
    fn: ElementwiseFn
    fast_kind: str | None = None


def resolve_pointwise(function: FunctionLike) -> PointwiseFunction:
    """Resolve ``function`` (see :data:`FunctionLike`) into a :class:`PointwiseFunction`.

    Raises ``ExpressionError`` for text that is neither a known name nor a valid expression,
    ``InputError`` for ``layernorm``/``rmsnorm`` (not point-wise) or an unusable object.
    """
    if isinstance(function, PointwiseFunction):
        return function
    if isinstance(function, str):
        return _resolve_text(function, None)
    expression = getattr(function, "expression", None)
    if isinstance(expression, str):
        name = getattr(function, "name", None)
        return _resolve_text(expression, name if isinstance(name, str) and name else None)
    if callable(function):
        fast = _FAST_CALLABLES.get(function) if _hashable(function) else None
        name = getattr(function, "__name__", None) or type(function).__name__
        return PointwiseFunction(fast or name, None, function, fast)
    raise InputError(
        "expected a function name, an expression, a candidate or a callable, "
        f"got {type(function).__name__}",
        field="function",
    )


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def from_expression(expression: str, name: str | None = None) -> PointwiseFunction:
    """Resolve expression text (or a built-in name), displayed as ``name`` if given."""
    return _resolve_text(expression, name)


def _resolve_text(text: str, display_name: str | None) -> PointwiseFunction:
    from funcsearch.named import resolve_function  # lazy: the symbolic core is upstream

    name, expression = resolve_function(text)
    if expression is None:
        raise InputError(
            f"{name!r} is a normalization layer, not a point-wise function "
            f"(use make_norm({name!r}, dim) for the baseline)",
            field="function",
        )
    fast = fast_kind_of(expression)
    fn = _FAST_TORCH[fast] if fast is not None else compiled_expression(expression)
    return PointwiseFunction(display_name or name, expression, fn, fast)


def fast_kind_of(expression: str) -> str | None:
    """``"erf"``/``"tanh"`` when the canonical expression is exactly ``erf(x)``/``tanh(x)``."""
    compact = expression.replace(" ", "")
    for kind in FAST_KINDS:
        if compact == f"{kind}(x)":
            return kind
    return None


@lru_cache(maxsize=512)
def compiled_expression(expression: str) -> ElementwiseFn:
    """``compile_function(expression)``, cached: every norm site of a model shares one."""
    from funcsearch.expressions import compile_function

    try:
        return compile_function(expression)
    except ExpressionError:
        raise
    except Exception as error:  # a parseable expression the torch walker cannot build
        raise ExpressionError(f"cannot compile {expression!r} to torch: {error}",
                              field="function") from error
