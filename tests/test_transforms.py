"""Each transformation does what its documented formula says, checked numerically."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.special import erf

from funcsearch.errors import ExpressionError
from funcsearch.expressions import X, fingerprint, parse_expression, to_numpy, to_text
from funcsearch.transforms import TRANSFORMS, apply_transform, format_value, step_label, sup_abs

# A deliberately lopsided base (not odd, not even, f(0) = 0.1) so that negate, mirror and
# point_reflect all give different functions.
BASE_TEXT = "tanh(x) + 0.3*x^2/(1 + x^2) + 0.1"


def base(t: np.ndarray) -> np.ndarray:
    return np.tanh(t) + 0.3 * t**2 / (1 + t**2) + 0.1


POINTS = np.array([-7.0, -2.5, -1.0, -0.3, -0.05, 0.0, 0.05, 0.3, 1.0, 2.5, 7.0])

FORMULAS = [
    ("translate", 2.0, lambda t: base(t + 2.0)),
    ("translate", -0.5, lambda t: base(t - 0.5)),
    ("offset", 0.7, lambda t: base(t) + 0.7),
    ("scale_x", 2.0, lambda t: base(2.0 * t)),
    ("scale_x", -0.5, lambda t: base(-0.5 * t)),
    ("scale_y", 3.0, lambda t: 3.0 * base(t)),
    ("negate", None, lambda t: -base(t)),
    ("mirror", None, lambda t: base(-t)),
    ("point_reflect", None, lambda t: -base(-t)),
    ("odd", None, lambda t: np.sign(t) * base(np.abs(t))),
    ("clip", 0.5, lambda t: np.clip(base(t), -0.5, 0.5)),
    ("mix", 0.1, lambda t: 0.9 * base(t) + 0.1 * t),
    ("flat_zone", 1.5, lambda t: np.where(np.abs(t) <= 1.5, base(0.0), base(t - np.sign(t) * 1.5))),
    ("ratio", None, lambda t: base(t) / (1 + np.abs(base(t)))),
]


@pytest.mark.parametrize(("name", "value", "expected"), FORMULAS,
                         ids=[f"{n}={v}" for n, v, _ in FORMULAS])
def test_transform_matches_its_formula_at_points(name, value, expected):
    expr = apply_transform(parse_expression(BASE_TEXT).expr, name, value)
    got = to_numpy(expr)(POINTS)
    np.testing.assert_allclose(got, expected(POINTS), rtol=1e-12, atol=1e-12)


def test_every_registered_transform_is_tested_and_documented():
    tested = {name for name, _, _ in FORMULAS} | {"rescale"}
    assert tested == set(TRANSFORMS)
    for transform in TRANSFORMS.values():
        assert transform.formula and transform.description


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, v, _ in FORMULAS])
def test_transformed_text_parses_back_to_the_same_function(name, value):
    expr = apply_transform(parse_expression(BASE_TEXT).expr, name, value)
    again = parse_expression(to_text(expr)).expr
    assert fingerprint(again) == fingerprint(expr)


def test_odd_extension_is_exactly_the_odd_mirror_of_the_right_half():
    expr = apply_transform(parse_expression(BASE_TEXT).expr, "odd")
    fn = to_numpy(expr)
    right = np.array([1e-9, 0.2, 1.0, 4.0])
    np.testing.assert_allclose(fn(right), base(right), rtol=1e-12)
    np.testing.assert_allclose(fn(-right), -base(right), rtol=1e-12)
    assert fn(np.array([0.0]))[0] == 0.0  # the only value an odd function can take at 0


def test_flat_zone_is_zero_inside_and_continuous_for_a_zero_centred_base():
    expr = apply_transform(parse_expression("erf(x)").expr, "flat_zone", 0.5)
    fn = to_numpy(expr)
    inside = np.linspace(-0.5, 0.5, 11)
    assert np.all(fn(inside) == 0.0)
    edge = np.array([0.5 + 1e-9, -0.5 - 1e-9])
    assert np.all(np.abs(fn(edge)) < 1e-8)  # continuous at the zone's edges
    np.testing.assert_allclose(fn(np.array([1.7, -2.0])), erf(np.array([1.2, -1.5])), rtol=1e-12)


def test_flat_zone_of_a_base_with_f0_not_zero_stays_continuous_at_f0():
    expr = apply_transform(parse_expression("erf(x) + 1").expr, "flat_zone", 1.0)
    fn = to_numpy(expr)
    assert np.all(fn(np.linspace(-1, 1, 9)) == 1.0)
    assert abs(fn(np.array([1.0 + 1e-9]))[0] - 1.0) < 1e-8


def test_rescale_divides_by_the_supremum():
    hump = apply_transform(parse_expression("x*exp(-x^2)").expr, "rescale")
    grid = np.linspace(-5, 5, 200001)
    assert abs(np.abs(to_numpy(hump)(grid)).max() - 1.0) < 1e-9
    arctan = apply_transform(parse_expression("atan(x)").expr, "rescale")
    assert fingerprint(arctan) == fingerprint("2/pi*atan(x)")  # limit at infinity, not atan(1e6)
    assert abs(sup_abs(arctan) - 1.0) < 1e-9


@pytest.mark.parametrize("text", ["x", "sign(x)*log(abs(x)+1)", "log(x)", "0*x"])
def test_rescale_refuses_unbounded_undefined_or_zero_functions(text):
    with pytest.raises(ExpressionError, match="rescale"):
        apply_transform(parse_expression(text).expr, "rescale")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("clip", 0, "c > 0"), ("clip", -1, "c > 0"), ("scale_x", 0, "k != 0"),
    ("mix", 1.5, "0 <= l <= 1"), ("flat_zone", -0.1, "l >= 0"),
    ("negate", 1, "takes no parameter"), ("translate", None, "needs a parameter"),
])
def test_invalid_parameters_are_refused(name, value, message):
    with pytest.raises(ValueError, match=message):
        apply_transform(X, name, value)


def test_unknown_transform_is_a_key_error():
    with pytest.raises(KeyError):
        apply_transform(X, "rotate90")


@pytest.mark.parametrize(("value", "signed", "text"), [
    (2, False, "2"), (2.0, False, "2"), (2.0, True, "+2"), (-0.5, True, "-0.5"),
    (0.1, False, "0.1"), (1e-5, False, "1e-05"), (0, True, "0"), (1.205, False, "1.205"),
])
def test_parameters_have_one_fixed_spelling(value, signed, text):
    assert format_value(value, signed) == text


def test_step_labels_are_stable_names():
    assert step_label("translate", 2) == "translate=+2"
    assert step_label("translate", 2.0) == "translate=+2"
    assert step_label("clip", 1.0) == "clip=1"
    assert step_label("mix", 0.1) == "mix=0.1"
    assert step_label("negate") == "negate"
    assert step_label("clip", "pi/2") == "clip=pi/2"


def test_decimal_parameters_are_exact_like_the_parser():
    shifted = apply_transform(sp.erf(X), "translate", 0.1)
    assert shifted == parse_expression("erf(x + 0.1)").expr
