"""The property checker classifies the functions of issue 2 section 5 with the default profile."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from funcsearch.errors import ConfigError
from funcsearch.expressions import parse_expression, to_text
from funcsearch.named import PAPER_SEARCH
from funcsearch.properties import (
    PROPERTIES,
    Profile,
    check_properties,
    default_profile_path,
    load_profile,
)
from funcsearch.transforms import apply_transform

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile()


def flat_zone(text: str, width: float) -> str:
    return to_text(apply_transform(parse_expression(text).expr, "flat_zone", width))


ALL_PASS = ["erf(x)", "tanh(x)", "2/pi*atan(x)", *PAPER_SEARCH]  # names resolve to the 16


@pytest.mark.parametrize("function", ALL_PASS)
def test_good_functions_pass_all_four(function, profile):
    report = check_properties(function, profile)
    assert report.passed == dict.fromkeys(PROPERTIES, True), report.reason
    assert report.kept


# (function, the property that must fail, the verdicts we also know)
FAILURES = [
    ("erf(x+2)", "zero_centred", {"bounded": True, "monotonic": True}),
    ("erf(x)+1", "zero_centred", {"bounded": True, "centre_sensitive": True, "monotonic": True}),
    ("x", "bounded", {"zero_centred": True, "centre_sensitive": True, "monotonic": True}),
    ("sign(x)*abs(x)**(2/3)", "bounded", {"zero_centred": True, "monotonic": True}),
    ("0.5*erf(x)+0.5*x", "bounded", {"zero_centred": True, "monotonic": True}),
    (flat_zone("erf(x)", 3), "centre_sensitive", {"zero_centred": True, "bounded": True,
                                                  "monotonic": True}),
    ("sin(x)", "monotonic", {"zero_centred": True, "bounded": True}),
    ("2*x/(1+x^2)", "monotonic", {"zero_centred": True, "bounded": True}),
    ("2.72*x*exp(-abs(x))", "monotonic", {"zero_centred": True, "bounded": True}),
]


@pytest.mark.parametrize(("function", "failing", "others"), FAILURES,
                         ids=[f"{f}-{p}" for f, p, _ in FAILURES])
def test_bad_functions_fail_the_stated_property(function, failing, others, profile):
    report = check_properties(function, profile)
    assert report.passed[failing] is False
    for prop, verdict in others.items():
        assert report.passed[prop] is verdict, (prop, report.reason)
    assert not report.kept
    assert failing in report.reason


def test_evidence_numbers_are_the_ones_behind_the_verdicts(profile):
    shifted = check_properties("erf(x)+1", profile).evidence
    assert shifted["f0"] == pytest.approx(1.0)
    assert shifted["odd_asymmetry"] == pytest.approx(0.5)  # even part 1, sup|f| 2
    linear = check_properties("x", profile).evidence
    assert linear["growth_exponent"] == pytest.approx(1.0, abs=1e-9)
    assert linear["sup_abs"] == pytest.approx(1e6)
    root = check_properties("sign(x)*abs(x)**(2/3)", profile).evidence
    assert root["growth_exponent"] == pytest.approx(2 / 3, abs=1e-9)
    logsign = check_properties("sign(x)*log(abs(x)+1)", profile)
    assert not logsign.passed["bounded"] and 0.05 < logsign.evidence["growth_exponent"] < 0.1
    erf = check_properties("erf", profile).evidence
    assert erf["sup_abs"] == pytest.approx(1.0) and erf["growth_exponent"] == 0.0
    assert erf["slope_at_0"] == pytest.approx(2 / math.sqrt(math.pi), rel=1e-6)
    assert erf["flat_zone_width"] == 0.0
    flat = check_properties(flat_zone("erf(x)", 3), profile).evidence
    assert flat["flat_zone_width"] == pytest.approx(3.0, abs=0.005)
    assert flat["slope_at_0"] == 0.0
    sine = check_properties("sin(x)", profile).evidence
    assert sine["monotonic_break_x"] == pytest.approx(math.pi / 2, abs=0.005)
    assert sine["min_slope"] == pytest.approx(-1.0, abs=1e-4)


def test_decreasing_functions_count_as_monotonic(profile):
    for text in ("-erf(x)", "-tanh(x)", "-2/pi*atan(x)"):
        report = check_properties(text, profile)
        assert report.passed["monotonic"] and report.evidence["direction"] == -1.0
        assert report.kept


def test_flat_zones_up_to_the_profile_width_are_centre_sensitive(profile):
    verdicts = {w: check_properties(flat_zone("tanh(x)", w), profile).passed["centre_sensitive"]
                for w in (0.1, 0.5, 1, 2, 3)}
    assert verdicts == {0.1: True, 0.5: True, 1: True, 2: False, 3: False}
    assert check_properties("x^3/(abs(x)^3+1)", profile).evidence["flat_zone_width"] < 0.2


def test_fast_growing_functions_are_still_centre_sensitive(profile):
    report = check_properties("sinh(x)", profile)
    assert report.passed["centre_sensitive"] and not report.passed["bounded"]


def test_functions_undefined_on_the_grid_fail_with_the_reason(profile):
    report = check_properties("log(x)", profile)
    assert not any(report.passed.values())
    assert "not finite at x=0" in report.reason


def test_infinite_slope_at_zero_is_a_warning_and_no_longer_a_nan_gradient(profile):
    report = check_properties("exproot", profile)
    assert report.kept and "infinite slope at x=0" in report.warning and "root_pow" in report.warning
    strict = profile.model_copy(update={"require_finite_gradient": True})
    report = check_properties("exproot", strict)  # the compiled gradient is finite everywhere now
    assert report.kept and "infinite slope" in report.warning
    assert check_properties("erf", profile).warning == ""


def test_statistics_norms_have_no_properties(profile):
    with pytest.raises(ConfigError, match="statistics-based"):
        check_properties("layernorm", profile)


def test_shipped_profile_is_identical_to_the_repository_one():
    assert default_profile_path().read_bytes() == (REPO / "properties" / "default.yaml").read_bytes()


def test_default_profile_file_sets_every_field_to_the_model_defaults():
    # the YAML documents the defaults: a field left out of a user profile means the same
    assert load_profile() == Profile(description=load_profile().description)


def test_user_profiles_change_the_verdicts(tmp_path):
    path = tmp_path / "lenient.yaml"
    path.write_text("centre_sensitive:\n  max_flat_zone_width: 5\n")
    lenient = load_profile(path)
    assert check_properties(flat_zone("erf(x)", 3), lenient).passed["centre_sensitive"]


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    ("grid:\n  points: 4000\n", 2, "grid.points", "odd"),
    ("bounded:\n  max_growth_exponent: lots\n", 2, "bounded.max_growth_exponent", "valid number"),
    ("monotonic:\n  tolerance: 1e-9\n  tolerence: 2\n", 3, "monotonic.tolerence", "extra inputs"),
    ("grid:\n  limit: 10\n  far_limit: 1e3\n", 1, None, "growth_window"),
])
def test_profile_errors_name_file_line_and_field(tmp_path, text, line, field, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    error = info.value
    assert message in str(error)
    assert (error.file, error.line) == (str(path), line)
    if field:
        assert error.field == field
