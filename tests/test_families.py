"""Family YAML: expansion to named candidates, and errors that point at file:line: field."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from funcsearch.errors import ConfigError, ExpressionError, InputError
from funcsearch.expressions import to_numpy
from funcsearch.families import MAX_EXPANSION, expand_family, load_family, parse_family
from funcsearch.yamlio import parse_yaml

FAMILY = textwrap.dedent("""\
    description: test family
    bases:
      - name: erf
        expression: erf(x)
      - name: wave
        expression: sin(x)
        pipeline: []
    pipeline:
      - transform: scale_x
        values: [0.5, 1, 2.0]
      - transform: clip
        values: [none, 1, pi/2]
      - one_of:
          - {transform: translate, values: [-1, 0, 1]}
          - {transform: offset, values: [0.5]}
        optional: true
      - transform: negate
        optional: true
    """)


def write(tmp_path: Path, text: str, name: str = "fam.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def names_of(text: str) -> list[str]:
    return [c.name for c in expand_family(parse_family(text, file="fam.yaml"))]


def test_family_expands_to_the_product_of_its_steps():
    names = names_of(FAMILY)
    # erf: 3 scales x 3 clips x (unchanged + 2 translates + 1 offset; translate 0 = unchanged)
    # x 2 (negate or not) = 72; wave has its own empty pipeline: 1
    assert len(names) == 3 * 3 * 4 * 2 + 1
    assert len(set(names)) == len(names)
    assert "wave" in names and "erf" in names
    assert "erf|scale_x=0.5|clip=pi/2|translate=+1|negate" in names
    assert "erf|scale_x=2|offset=+0.5" in names
    assert not any("scale_x=1" in n or "translate=0" in n or "translate=+0" in n for n in names)


def test_names_are_in_pipeline_order_and_formulas_follow_them():
    family = parse_family(FAMILY, file="fam.yaml")
    found = {c.name: c for c in expand_family(family)}
    candidate = found["erf|scale_x=2|clip=1|translate=-1|negate"]
    x = np.linspace(-3, 3, 13)
    from scipy.special import erf

    np.testing.assert_allclose(to_numpy(candidate.expr)(x), -np.clip(erf(2 * (x - 1)), -1, 1),
                               rtol=1e-12, atol=1e-14)
    assert candidate.steps == 4 and candidate.family == "fam"


def test_spelling_of_a_number_does_not_change_the_name():
    a = names_of(FAMILY)
    b = names_of(FAMILY.replace("[0.5, 1, 2.0]", "[0.50, 1.0, 2]"))
    c = names_of(FAMILY.replace("[0.5, 1, 2.0]", "[5e-1, 1e0, 2e0]"))  # YAML 1.1: text
    d = names_of(FAMILY.replace("[0.5, 1, 2.0]", "[1/2, 2/2, 4/2]"))  # constant expressions
    assert a == b == c == d
    thirds = names_of(FAMILY.replace("[0.5, 1, 2.0]", "[1/3]"))
    assert "erf|scale_x=1/3" in thirds


def test_family_name_is_the_file_stem(tmp_path):
    family = load_family(write(tmp_path, FAMILY, "natural_test.yaml"))
    assert family.name == "natural_test"
    assert {c.family for c in expand_family(family)} == {"natural_test"}


def error_of(tmp_path: Path, text: str) -> InputError:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        expand_family(load_family(path))
    return info.value


@pytest.mark.parametrize(("old", "new", "line", "field", "message", "kind"), [
    ("transform: scale_x", "transform: scalex", 9, "pipeline[0].transform",
     "unknown transform 'scalex'", ConfigError),
    ("values: [0.5, 1, 2.0]", "values: [0.5, [1], 2.0]", 10, "pipeline[0].values[1]",
     "a parameter value must be a number", ConfigError),
    ("values: [0.5, 1, 2.0]", "values: [0.5, true, 2.0]", 10, "pipeline[0].values[1]",
     "a parameter value must be a number", ConfigError),
    ("values: [0.5, 1, 2.0]", "values: [0.5, 0, 2.0]", 10, "pipeline[0].values[1]", "k != 0",
     ConfigError),
    ("values: [none, 1, pi/2]", "values: [none, 1, os.system]", 12, "pipeline[1].values[2]",
     "'os' is not an allowed name", ExpressionError),
    ("values: [none, 1, pi/2]", "values: [none, 1, 2*x]", 12, "pipeline[1].values[2]",
     "must be a constant", ConfigError),
    ("expression: sin(x)", "expression: sin(x) + __import__('os').getcwd()", 6,
     "bases[1].expression", "is not allowed", ExpressionError),
    ("expression: sin(x)", "expression: sin(x", 6, "bases[1].expression", "syntax error",
     ExpressionError),
    # a misspelt key gives two errors on one line: the missing key, and that one more is wrong
    ("expression: sin(x)", "expresion: sin(x)", 5, "bases[1].expression",
     "field required (and 1 more problem in this file)", ConfigError),
    ("name: wave", "name: wa|ve", 5, "bases[1].name", "must start with a letter", ConfigError),
    ("name: wave", "name: erf", 1, None, "base name 'erf' is used twice", ConfigError),
    ("  - transform: negate\n    optional: true", "  - transform: negate\n    values: [1]", 17,
     "pipeline[3]", "negate takes no parameter", ConfigError),
    ("  - transform: negate\n    optional: true", "  - transform: clip", 17,
     "pipeline[3]", "clip needs 'values'", ConfigError),
    ("{transform: offset, values: [0.5]}", "{transform: offset, values: [0.5], bogus: 3}", 15,
     "pipeline[2].one_of[1].bogus", "extra inputs", ConfigError),
])
def test_yaml_errors_name_file_line_and_field(tmp_path, old, new, line, field, message, kind):
    assert old in FAMILY
    error = error_of(tmp_path, FAMILY.replace(old, new))
    assert isinstance(error, kind)
    assert message in str(error)
    assert (error.file, error.line, error.field) == (str(tmp_path / "fam.yaml"), line, field)
    prefix = f"{tmp_path / 'fam.yaml'}:{line}: " + (f"{field}: " if field else "")
    assert str(error).startswith(prefix)


def test_missing_field_points_at_its_item(tmp_path):
    text = FAMILY.replace("  - name: wave\n    expression: sin(x)\n", "  - name: wave\n")
    error = error_of(tmp_path, text)
    assert error.field == "bases[1].expression" and "field required" in str(error)
    assert error.line == 5


def test_rescale_of_an_unbounded_base_names_the_step(tmp_path):
    text = """\
        bases:
          - {name: lin, expression: "x"}
        pipeline:
          - transform: rescale
        """
    error = error_of(tmp_path, text)
    assert "unbounded" in str(error) and error.field == "pipeline[0]" and error.line == 4


def test_yaml_syntax_and_duplicate_keys_are_located(tmp_path):
    error = error_of(tmp_path, "bases: [\n  {name: a, expression: x}\npipeline: []\n")
    assert "invalid YAML" in str(error) and error.line == 3
    error = error_of(tmp_path, "bases:\n  - {name: a, expression: x}\nbases: []\n")
    assert "duplicate key 'bases'" in str(error) and error.line == 3


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path):
    error = error_of(tmp_path, "- just\n- a list\n")
    assert "mapping" in str(error)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_family(tmp_path / "nope.yaml")


def test_expansion_limit_stops_runaway_products(tmp_path):
    values = list(range(1, 60))
    text = f"""\
        bases:
          - {{name: a, expression: "erf(x)"}}
        pipeline:
          - {{transform: scale_x, values: {values}}}
          - {{transform: scale_y, values: {values}}}
          - {{transform: offset, values: {values}}}
        """
    assert len(values) ** 3 > MAX_EXPANSION
    error = error_of(tmp_path, text)
    assert "expands to" in str(error)


def test_hostile_yaml_tags_and_expressions_never_run_code(tmp_path):
    marker = tmp_path / "pwned"
    for text in (
        f"bases:\n  - {{name: a, expression: \"__import__('os').system('touch {marker}')\"}}\n",
        f"bases: !!python/object/apply:os.system ['touch {marker}']\n",
        f"bases:\n  - name: a\n    expression: !!python/object/apply:os.system ['touch {marker}']\n",
    ):
        with pytest.raises(InputError):
            expand_family(load_family(write(tmp_path, text)))
    assert not marker.exists()


def test_alias_bombs_are_refused():
    levels = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for index, name in enumerate("bcdefgh"):
        previous = "abcdefgh"[index]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    with pytest.raises(ConfigError, match="too large"):
        parse_yaml("\n".join(levels), file="bomb.yaml")


def test_line_of_skips_unknown_parts_of_a_pydantic_location():
    doc = parse_yaml("a: 1\nb:\n  - x: 2\n  - y: [1,\n      2]\n", file="f.yaml")
    assert doc.line_of(("b", 1, "y", 1)) == 5
    assert doc.line_of(("b", 0, "function-after[check]", "x")) == 3
    assert doc.line_of(("nothing",)) == 1
    assert os.fspath(doc.file) == "f.yaml"
