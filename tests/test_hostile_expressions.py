"""Pathological expression text: nothing hangs, nothing runs, every answer is one line.

Each case is either accepted -- and then its canonical text parses back (to the same tree,
or, for the few trees sympy re-evaluates differently, to the same function) and the whole
chain (fingerprint, torch compilation, the four property checks) returns -- or refused
with a one-line ExpressionError naming the file and line. Nothing may hang: each case runs
under a pytest-timeout guard, and the limits that keep them fast are counts (parts,
depth, exponents, compared arguments), not clocks -- no test here asserts a duration.
"""

from __future__ import annotations

import builtins
import math
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize  # noqa: F401  (imported here, not lazily inside a trapped call)
import scipy.special  # noqa: F401
import sympy as sp
import torch

from funcsearch.errors import ExpressionError, FuncsearchError
from funcsearch.expressions import (
    MAX_TREE_SIZE,
    Cbrt,
    X,
    check_tree,
    fingerprint,
    parse_expression,
    to_numpy,
    to_torch,
)
from funcsearch.properties import check_properties

ROOT = Path(__file__).resolve().parents[1]
ACCEPT = None

MARKER = "/tmp/funcsearch_hostile_marker"


def nest(name: str, depth: int, inner: str = "x") -> str:
    return f"{name}(" * depth + inner + ")" * depth


# (text, None = accepted, or a part of the refusal message)
CASES: list[tuple[str, str | None]] = [
    # 1. constants that made sympy/mpmath evaluate exactly for ever
    ("x*sin(exp(exp(20)))", "constant exp(exp(20)) overflows"),
    ("sin(exp(exp(100)))**2*x", "constant exp(exp(100)) overflows"),
    ("erf(x)*cos(exp(exp(exp(5))))", "constant exp(exp(exp(5))) overflows"),
    ("x + exp(exp(230))", "overflows"),
    ("x + exp(231)", "overflows"),
    ("x*exp(230)", ACCEPT),
    ("x*sinh(1000)", "overflows"),
    ("x/exp(-exp(230))", "overflows"),
    ("x + exp(-exp(100))", ACCEPT),
    ("tan(1000000**16)*x", ACCEPT),
    ("where(sin(exp(exp(20))) > 0, x, 0)", "overflows"),
    ("max(exp(exp(9)), x)", "overflows"),
    ("clip(x, -exp(exp(20)), 1)", "overflows"),
    ("e**e**e**e*x", "constant exponent"),
    ("pi**pi**pi*x", "constant exponent"),
    ("10**100*x", "constant exponent"),
    ("cosh(exp(6))*x", "overflows"),
    # constants that are not real numbers (they crashed later, in the compilation)
    ("sqrt(-1)*x", "imaginary"),
    ("log(-1)*x", "imaginary"),
    ("(-8)**(1/3)*x", "not a real number"),
    ("0**-1*x", "division by zero"),
    ("log(0)*x", "infinite or undefined"),
    ("1/(x - x)", "division by zero"),
    # numbers: decimals up to 1e6, integers (canonical fractions) up to 1e100
    ("1e400*x", "non-finite"),
    ("1e9*x", "larger than"),
    ("x*1e-300", "too small or too precise"),
    ("9" * 101 + "*x", "larger than 1e100"),
    ("9" * 99 + "*x", ACCEPT),
    ("12345678901234567890*x", ACCEPT),
    ("1000*1000*1000*x", ACCEPT),
    ("0.1234567*x", ACCEPT),
    ("0.7978845608*(x + 0.044715*x**3)", ACCEPT),
    ("x*(1/3)**16", ACCEPT),
    ("x*1e-100", ACCEPT),
    ("1_000_000_000*x", ACCEPT),
    ("0x10*x", ACCEPT),
    # 2. trees that grow beyond the text: cbrt is one node, powers combine
    (nest("cbrt", 20), ACCEPT),
    (nest("cbrt", 45), "nested deeper"),
    (nest("sigmoid", 6), ACCEPT),
    (nest("sigmoid", 14), ACCEPT),
    (nest("sigmoid", 22), "canonical form would not parse back"),
    (nest("clip", 1, "x, -1, 1"), ACCEPT),
    ("clip(clip(clip(clip(clip(clip(clip(clip(x, -8, 8), -7, 7), -6, 6), -5, 5), -4, 4), -3, 3), -2, 2), -1, 1)",
     ACCEPT),
    (nest("sqrt", 20, "abs(x)"), ACCEPT),
    ("where(x > 0, where(x > 1, where(x > 2, 3, 2), 1), where(x < -1, -1, 0))", ACCEPT),
    # 3. accepted only if the canonical text parses back
    ("clip(((x**16)**16)**16, -1, 1)", "constant exponent must be at most 16 in size"),
    ("(x**16)**16", "constant exponent"),
    ("x**16*x**16", "constant exponent"),
    ("(x + 1)**16*(x + 1)**16", "constant exponent"),
    ("x**-16", ACCEPT),
    ("x**-17", "constant exponent"),
    ("exp(x)**16", ACCEPT),
    # sympy compares every pair of min/max arguments symbolically: 40 took 6-20 s
    ("max(" + ",".join(f"sigmoid(x+{k})" for k in range(40)) + ")", "max() compares at most 8 arguments"),
    ("max(" + ",".join(f"max(sigmoid(x+{k}), x+{k})" for k in range(5)) + ")", "got 10"),
    ("min(" + ",".join(f"sigmoid(x+{k})" for k in range(8)) + ")", ACCEPT),
    # a nest near the text limits (8 of 8 is over 1000 characters): max of 8 min of 5 each
    ("max(" + ",".join("min(" + ",".join(f"erf(x+{8 * k + j})" for j in range(5)) + ")" for k in range(8)) + ")",
     ACCEPT),
    ("2/pi*(sqrt(3)*x/(3 + x^2) + atan(x/sqrt(3)))", ACCEPT),  # re-evaluates to another tree
    ("x^3/(abs(x)^3 + 1)", ACCEPT),
    ("x**(1/3)", ACCEPT),
    ("exp(x)**exp(x)", ACCEPT),
    ("x**x**x**x", ACCEPT),
    ("tan(x/20)/tan(0.5)", ACCEPT),
    ("sin(x)/x", ACCEPT),
    ("log(x)", ACCEPT),
    # text limits: nesting, length, characters
    ("(" * 45 + "x" + ")" * 45, "brackets nested deeper"),
    ("-" * 100 + "x", "nested deeper"),
    ("x" + "+x" * 600, "characters long"),
    ("x" * 1001, "characters long"),
    ("x" + " " * 1000, "characters long"),
    ("1" * 500 + "*x", "larger than 1e100"),
    ("\uff58 + 1", "plain ASCII"),  # full-width x
    ("x\u0000", "plain ASCII"),
    ("x\n+ 1", "plain ASCII"),
    ("erf(x)\x7f", "plain ASCII"),
    ("x\u202e + 1", "plain ASCII"),  # right-to-left override
    ("\U0001f600", "plain ASCII"),
    # code: attribute access, dunders, lambdas, unknown names, other syntax
    (f"__import__('os').system('touch {MARKER}')", "attribute access"),
    (f"__import__('os')", "'__import__' is not an allowed function"),
    ("x.__class__.__mro__[1].__subclasses__()", "not allowed"),
    ("().__class__.__bases__[0]", "not allowed"),
    ("erf.__globals__", "attribute access"),
    ("x.real", "attribute access"),
    ("erf(x).evalf()", "attribute access"),
    (f"lambda: __import__('os').system('touch {MARKER}')", "lambda is not allowed"),
    ("(lambda: 1)()", "only calls of whitelisted functions"),
    ("[c for c in ().__class__.__base__.__subclasses__()]", "comprehension is not allowed"),
    ("getattr(x, '__class__')", "'getattr' is not an allowed function"),
    ("globals()", "'globals' is not an allowed function"),
    ("breakpoint()", "'breakpoint' is not an allowed function"),
    ("exec('import os')", "'exec' is not an allowed function"),
    ("eval('1')", "'eval' is not an allowed function"),
    ("sympify('x')", "'sympify' is not an allowed function"),
    ("Symbol('y')*x", "'Symbol' is not an allowed function"),
    ("S.Pi*x", "'S' is not an allowed name"),
    ("y + x", "'y' is not an allowed name"),
    ("__builtins__", "is not an allowed name"),
    ("import os", "syntax error"),
    ("x; import os", "syntax error"),
    ("x if 1 else 0", "if-expression"),
    ("x or 1", "only allowed as the condition"),
    ("not x", "not allowed"),
    ("x == 1", "only allowed as the condition"),
    ("x @ x", "not allowed"),
    ("x // 2", "not allowed"),
    ("x % 2", "not allowed"),
    ("{x}", "set is not allowed"),
    ("x[0]", "subscript is not allowed"),
    ("f'{x}'", "f-string is not allowed"),
    ("b'x'", "is not a number"),
    ("None", "is not a number"),
    ("...", "is not a number"),
    ("1j*x", "is not a number"),
    ("(y := x)", "assignment is not allowed"),
    ("erf(x=1)", "keyword"),
    ("min(*[x])", "takes at least 2"),
    ("min(x, *[x])", "starred argument is not allowed"),
    ("max(x)", "takes at least 2 argument"),
    ("where(x > 0, x)", "takes 3 arguments"),
    ("where(x, 1, 2)", "condition of where"),
    ("where(x > 0 and x, 1, 2)", "condition of where"),
    ("where(x is 1, 1, 2)", "comparison 'Is' is not allowed"),
    ("x > 0", "only allowed as the condition"),
    ("erf", "is a function"),
    ("", "empty expression"),
]

assert len(CASES) >= 60


@contextmanager
def no_code_runs(monkeypatch: pytest.MonkeyPatch):
    """Booby-trap every way text could run code; fail if any trap is touched."""
    calls: list[str] = []

    def trap(name):
        def trapped(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} called")

        return trapped

    real_compile = builtins.compile
    real_exec = builtins.exec

    def guarded_exec(code, *args, **kwargs):
        # importlib runs a lazily imported module's file with exec(code object): allowed
        if hasattr(code, "co_filename") and os.path.isfile(code.co_filename):
            return real_exec(code, *args, **kwargs)
        calls.append("exec")
        raise AssertionError("exec called")

    def guarded_compile(*args, **kwargs):
        flags = kwargs.get("flags", args[3] if len(args) > 3 else 0)
        if flags & 0x400:  # ast.PyCF_ONLY_AST: what ast.parse does
            return real_compile(*args, **kwargs)
        calls.append("compile")
        raise AssertionError("compile called")

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "eval", trap("eval"))
        patch.setattr(builtins, "exec", guarded_exec)
        patch.setattr(builtins, "compile", guarded_compile)
        patch.setattr(builtins, "breakpoint", trap("breakpoint"))
        patch.setattr(sp, "sympify", trap("sympify"))
        patch.setattr(os, "system", trap("os.system"))
        patch.setattr(subprocess, "Popen", trap("Popen"))
        yield calls
    assert calls == [], calls


def parses_back(expression) -> None:
    """The canonical text parses back: to the same tree, or (where sympy re-evaluates the
    printed form differently: ``2*(1 + y/2)`` is built as ``2 + y``) to the same function."""
    canonical = expression.text
    back = parse_expression(canonical)
    if back.expr != expression.expr:
        assert fingerprint(back) == fingerprint(expression), (canonical, back.text)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("text", "expected"), CASES, ids=[f"{i:03d}-{t[:40]!r}" for i, (t, _) in enumerate(CASES)])
def test_hostile_expression(text: str, expected: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    with no_code_runs(monkeypatch):
        try:
            expression = parse_expression(text, file="candidates/mine.yaml", line=7)
        except ExpressionError as exc:
            message = str(exc)
            assert expected is not ACCEPT, f"refused: {message}"
            assert "\n" not in message and "Traceback" not in message, message
            assert message.startswith("candidates/mine.yaml:7: "), message
            assert expected in message, message
            expression = None
        else:
            assert expected is ACCEPT, f"accepted as {expression.text!r}, expected a refusal ({expected})"
            parses_back(expression)
    if expression is not None:  # the rest of the chain returns too
        fingerprint(expression)
        values = to_torch(expression)(torch.linspace(-3, 3, 7, dtype=torch.float64))
        assert values.shape == (7,)
        report = check_properties(expression, name=text[:40])
        assert set(report.passed) == {"zero_centred", "bounded", "centre_sensitive", "monotonic"}
    assert not os.path.exists(MARKER)


# --------------------------------------------------------------------------- the cases


@pytest.mark.timeout(120)
@pytest.mark.parametrize("text", ["x*sin(exp(exp(20)))", "sin(exp(exp(100)))**2*x",
                                  "erf(x)*cos(exp(exp(exp(5))))"])
def test_huge_constants_are_refused_quickly_naming_the_constant(text: str) -> None:
    with pytest.raises(ExpressionError, match=r"constant exp\(exp\(.*\)\) overflows"):
        parse_expression(text)


@pytest.mark.timeout(120)
def test_library_callers_cannot_hang_the_reference_either() -> None:
    """A tree built directly (not parsed) meets the same constant check in to_numpy."""
    with pytest.raises(ExpressionError, match="overflows"):
        to_numpy(sp.sin(sp.exp(sp.exp(100))) * X)


@pytest.mark.timeout(120)
def test_cbrt_is_one_node_and_its_backends_agree() -> None:
    deep = parse_expression(nest("cbrt", 20))
    assert deep.text == nest("cbrt", 20)  # 20 nodes, not 2**20
    assert isinstance(parse_expression("cbrt(x)").expr, Cbrt)
    assert parse_expression("cbrt(-8)").expr == -2
    assert fingerprint("cbrt(x)") == fingerprint("sign(x)*abs(x)**(1/3)")
    points = np.array([-27.0, -8.0, -2.5, -1e-6, 0.0, 1e-6, 0.3, 1.0, 8.0, 1e6])
    reference = to_numpy("cbrt(x)")(points)
    np.testing.assert_allclose(reference, np.sign(points) * np.abs(points) ** (1 / 3), rtol=1e-14)
    compiled = to_torch("cbrt(x)")(torch.tensor(points, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(compiled, reference, rtol=1e-12, atol=0)
    exact = [float(Cbrt(sp.Float(p, 30)).evalf(30)) for p in points]
    np.testing.assert_allclose(reference, exact, rtol=1e-14)
    # gradient: PyTorch's away from 0, 0 at exactly 0 (expressions.root_pow)
    t = torch.tensor([-8.0, 1.0, 8.0], dtype=torch.float64, requires_grad=True)
    to_torch("cbrt(x)")(t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [1 / 12, 1 / 3, 1 / 12], rtol=1e-12)
    from funcsearch.expressions import check_compiled

    assert check_compiled("cbrt(x)").ok


@pytest.mark.timeout(120)
def test_a_shared_tree_is_measured_as_a_tree_without_being_walked_as_one() -> None:
    f = sp.erf(X)
    with pytest.raises(ExpressionError, match=f"more than {MAX_TREE_SIZE} parts"):
        for _ in range(60):  # 2**60 parts as a tree, 240 distinct nodes
            f = sp.Mul(f, sp.Pow(sp.Add(1, sp.Abs(f, evaluate=False), evaluate=False), -1,
                                 evaluate=False), evaluate=False)
            check_tree(f)


@pytest.mark.timeout(120)
def test_exponent_refusal_names_the_combined_power() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression("clip(((x**16)**16)**16, -1, 1)")
    assert "x**256" in str(caught.value)


@pytest.mark.timeout(120)
def test_poles_between_grid_points_fail_bounded() -> None:
    report = check_properties("tan(x/20)/tan(0.5)", compile_check=False)
    assert not report.passed["bounded"]
    assert report.evidence["pole_x"] == pytest.approx(10 * math.pi, rel=1e-9)
    assert "pole near x=31.4159" in report.checks["bounded"].detail
    for bounded in ("clip(tan(x), -1, 1)", "atan(tan(x))", "x/sqrt(x**2 + 1)", "sigmoid(x) - 1/2"):
        assert check_properties(bounded, compile_check=False).passed["bounded"], bounded


# --------------------------------------------------------------------------- the whole catalog


@pytest.mark.timeout(300)
def test_every_catalog_candidate_parses_back_to_the_same_function() -> None:
    """Candidate.expression (what results are keyed by) parses back, to the same function
    (not always to the same tree: sympy builds the printed ``2*(1 + y/2)`` as ``2 + y``),
    and so does the canonical text of what it parses to."""
    from funcsearch.candidates import load_candidates

    seen = 0
    for folder in (ROOT / "candidates", ROOT / "candidates" / "property_studies"):
        for candidate in load_candidates([folder]):
            parsed = parse_expression(candidate.expression)
            assert fingerprint(parsed) == candidate.fingerprint, candidate.name
            again = parse_expression(parsed.text)
            assert fingerprint(again) == candidate.fingerprint, candidate.name
            seen += 1
    assert seen > 1000


def test_refusals_are_funcsearch_errors() -> None:
    assert issubclass(ExpressionError, FuncsearchError)
