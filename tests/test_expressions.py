"""The safe expression language: parsing, rejection of hostile text, compilation, fingerprints."""

from __future__ import annotations

import builtins
import math
import os
import subprocess

import numpy as np
import pytest
import sympy as sp
import torch

from funcsearch.errors import ExpressionError
from funcsearch.expressions import (
    MAX_LENGTH,
    X,
    check_compiled,
    compile_function,
    fingerprint,
    parse_expression,
    to_numpy,
    to_torch,
)

VALID = {
    "erf(x)": sp.erf(X),
    "clip(sign(x)*log(abs(x)+1), -1, 1)": sp.Min(sp.Max(sp.sign(X) * sp.log(sp.Abs(X) + 1), -1), 1),
    "x/(1+abs(x))": X / (1 + sp.Abs(X)),
    "2/pi*atan(x)": 2 * sp.atan(X) / sp.pi,
    "x^3/(abs(x)^3+1)": X**3 / (sp.Abs(X) ** 3 + 1),
    "0.5*x": X / 2,
    "e**x": sp.exp(X),
    "where(x > 0, x, 0)": sp.Piecewise((X, X > 0), (0, True)),
    "piecewise(abs(x) <= 1, 0, x)": sp.Piecewise((0, sp.Abs(X) <= 1), (X, True)),
    "max(x, -1)": sp.Max(X, -1),
    "min(x, 1, 2)": sp.Min(X, 1),
    "sigmoid(x)": 1 / (1 + sp.exp(-X)),
}


@pytest.mark.parametrize("text", sorted(VALID))
def test_valid_expressions_build_the_expected_sympy_tree(text: str) -> None:
    assert sp.simplify(parse_expression(text).expr - VALID[text]) == 0


@pytest.mark.parametrize("text", sorted(VALID))
def test_canonical_text_parses_back_to_the_same_tree(text: str) -> None:
    expression = parse_expression(text)
    assert parse_expression(expression.text).expr == expression.expr


def test_caret_is_power_with_power_precedence() -> None:
    # Read as BitXor, "x^3/(...)" would silently become x ** (3/(...)).
    assert parse_expression("x^3/2").expr == X**3 / 2


HOSTILE = [
    ("os.system('ls')", "'os' is not an allowed name"),
    ("__import__('os').system('ls')", "attribute access is not allowed"),
    ("__import__('os')", "'__import__' is not an allowed function"),
    ("x.__class__", "attribute access"),
    ("x.__class__.__bases__[0].__subclasses__()", "not allowed"),
    ("().__class__", "not allowed"),
    ("__builtins__", "'__builtins__' is not an allowed name"),
    ("eval('1')", "'eval' is not an allowed function"),
    ("exec('import os')", "'exec' is not an allowed function"),
    ("open('/etc/passwd')", "'open' is not an allowed function"),
    ("lambda: 0", "lambda is not allowed"),
    ("(lambda y: y)(x)", "only calls of whitelisted functions"),
    ("[x for x in range(10)]", "comprehension is not allowed"),
    ("{y: 1 for y in 'ab'}", "comprehension is not allowed"),
    ("(y for y in x)", "generator is not allowed"),
    ("import os", "syntax error"),
    ("x; import os", "syntax error"),
    ("x**1000000", "constant exponent"),
    ("2**2**2**2**2", "constant exponent"),
    ("9**9**9", "constant exponent"),
    ("(((((((2**16)**16)**16)**16)**16)**16)**16)", "constant power larger"),
    ("(" * 60 + "x" + ")" * 60, "nested deeper"),
    ("-" * 100 + "x", "nested deeper"),
    ("+".join(["x"] * 300), "nested deeper"),
    ("max(" + ",".join(["x"] * 450) + ")", "more than"),
    ("x" + "+1" * 600, "characters long"),
    ("foo(x)", "'foo' is not an allowed function"),
    ("y + 1", "'y' is not an allowed name"),
    ("X + 1", "'X' is not an allowed name"),
    ("\uff4f\uff53.system('ls')", "is not allowed"),  # full-width letters NFKC-normalise to "os"
    ("x\u200b+1", "plain ASCII"),  # zero-width space
    ("erf(x, y=1)", "keyword"),
    ("erf(*x)", "starred"),
    ("'abc'", "is not a number"),
    ("True", "is not a number"),
    ("1j * x", "is not a number"),
    ("x if x > 0 else 0", "if-expression"),
    ("(y := x)", "assignment"),
    ("x[0]", "subscript"),
    ("f'{x}'", "f-string"),
    ("x > 0", "only allowed as the condition"),
    ("x / 0", "division by zero"),
    ("x @ x", "not allowed"),
    ("x << 2", "not allowed"),
    ("~x", "not allowed"),
    ("1e400 * x", "non-finite"),
    ("1e9 * x", "larger than"),
    ("where(1, x, 0)", "condition of where"),
    ("clip(x, 1)", "takes 3 argument"),
    ("erf", "is a function"),
    ("", "empty expression"),
    ("   ", "empty expression"),
]


@pytest.mark.parametrize(("text", "expected"), HOSTILE, ids=[repr(t[:30]) for t, _ in HOSTILE])
def test_hostile_or_malformed_text_is_rejected_with_a_message(text: str, expected: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text, file="candidates/mine.yaml", line=12)
    message = str(caught.value)
    assert message.startswith("candidates/mine.yaml:12: "), message
    assert expected in message, message


def test_hostile_inputs_run_no_code(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Booby-trap every way text could run code; parsing everything must touch none."""
    calls: list[str] = []

    def trap(name):
        def trapped(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} called")

        return trapped

    for name in ("eval", "exec", "compile", "__import__", "open"):
        real = getattr(builtins, name)
        if name in ("compile", "__import__", "open"):
            # ast.parse uses compile() with PyCF_ONLY_AST; allow exactly that, trap the rest.
            def guarded(*args, _real=real, _name=name, **kwargs):
                flags = kwargs.get("flags", args[3] if len(args) > 3 else 0)
                if _name == "compile" and flags & 0x400:  # ast.PyCF_ONLY_AST
                    return _real(*args, **kwargs)
                if _name == "__import__":
                    return _real(*args, **kwargs)  # imports of already-loaded modules are harmless
                calls.append(_name)
                raise AssertionError(f"{_name} called")

            monkeypatch.setattr(builtins, name, guarded)
        else:
            monkeypatch.setattr(builtins, name, trap(name))
    monkeypatch.setattr(sp, "sympify", trap("sympify"))
    monkeypatch.setattr(os, "system", trap("os.system"))
    monkeypatch.setattr(subprocess, "Popen", trap("Popen"))
    for text, _ in HOSTILE:
        with pytest.raises(ExpressionError):
            parse_expression(text)
    assert calls == []


def test_error_is_located_by_field_as_well() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("os.system('x')", file="f.yaml", line=3, field="bases[0].expression")
    assert str(caught.value).startswith("f.yaml:3: bases[0].expression: ")
    assert "os.system" in str(caught.value)


def test_length_limit_is_enforced() -> None:
    with pytest.raises(ExpressionError):
        parse_expression("x" + " " * MAX_LENGTH)


REFERENCE_POINTS = [-3.7, -1.0, -0.2, 0.0, 0.3, 1.0, 2.5]


@pytest.mark.parametrize(
    "text",
    ["erf(x)", "clip(asinh(x), -1, 1)", "sign(x)*(1-exp(-abs(x)))", "where(abs(x) <= 1, 0, tanh(x - sign(x)))",
     "2/pi*atan(x)", "x/sqrt(x^2+1)", "sigmoid(x) - 1/2", "erfc(x)", "max(x, -1) + min(x, 1)", "cosh(x)/sinh(1)"],
)
def test_numpy_reference_and_torch_agree_with_sympy_evalf(text: str) -> None:
    expression = parse_expression(text)
    reference = to_numpy(expression)(np.array(REFERENCE_POINTS))
    compiled = to_torch(expression)(torch.tensor(REFERENCE_POINTS, dtype=torch.float64)).numpy()
    exact = [float(expression.expr.subs(X, sp.Float(p, 30)).evalf(30)) for p in REFERENCE_POINTS]
    np.testing.assert_allclose(reference, exact, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(compiled, exact, rtol=1e-12, atol=1e-12)


def test_compiled_function_keeps_shape_dtype_and_gradient() -> None:
    fn = compile_function("2/pi*atan(x)")
    t = torch.randn(4, 5, 6, dtype=torch.float32, requires_grad=True)
    out = fn(t)
    assert out.shape == t.shape and out.dtype == torch.float32
    out.sum().backward()
    expected = 2 / math.pi / (1 + t.detach() ** 2)
    torch.testing.assert_close(t.grad, expected)


def test_constant_function_compiles_to_a_full_tensor() -> None:
    out = compile_function("pi")(torch.zeros(3))
    torch.testing.assert_close(out, torch.full((3,), math.pi))


def test_check_passes_smooth_functions() -> None:
    check = check_compiled("erf(x)")
    assert check.ok and check.reason is None and check.max_abs_error_float32 < 1e-5


@pytest.mark.parametrize("text", ["abs(x)**(2/3)", "clip(sign(x)*abs(x)**(2/3), -1, 1)",
                                  "sign(x)*(1 - exp(-sqrt(abs(x))))", "cbrt(x)"])
def test_roots_take_a_finite_gradient_at_exactly_zero(text: str) -> None:
    """The slope of a root is infinite at 0; autograd made that a NaN (inf * 0) and one exact
    zero poisoned a whole training step. The compiled form takes the gradient 0 there and is
    PyTorch's own everywhere else (bit for bit), and its trial key says so."""
    import torch

    from funcsearch.expressions import ROOT_GRADIENT, has_root, to_torch

    check = check_compiled(text)
    assert check.ok, check.reason
    x = torch.tensor([0.0, -0.0, 1e-30, -0.3, 0.7], requires_grad=True)
    to_torch(text)(x).sum().backward()
    assert x.grad[0] == 0 and x.grad[1] == 0 and torch.isfinite(x.grad).all()
    assert x.grad[2] > 1e6  # steep, finite, just off 0
    assert has_root(text) and ROOT_GRADIENT
    assert not has_root("x/sqrt(1 + x**2)") and not has_root("erf(x)")  # x**(-1/2): not a root


def test_check_reports_undefined_values_instead_of_crashing() -> None:
    check = check_compiled("log(x)")
    assert not check.values_ok and "not finite" in (check.reason or "")


def test_fingerprint_merges_two_spellings_and_separates_different_functions() -> None:
    assert fingerprint("tanh(x/2)") == fingerprint("2*sigmoid(x)-1")
    assert fingerprint("x/(1+abs(x))") == fingerprint("x/(abs(x)+1)")
    assert fingerprint("erf(x)") != fingerprint("tanh(x)")
    assert fingerprint("erf(x)") != fingerprint("erf(x) + 1e-3")
