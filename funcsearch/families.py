"""Family YAML files: base functions and a pipeline of transformations, expanded to candidates.

A family file (its stem is the family name)::

    description: Sigmoid-shaped functions everyone knows.
    bases:
      - name: erf                       # letters, digits, _ . - ; unique in the catalog
        expression: erf(x)              # the safe expression language
        description: Gauss error function (Derf)
      - name: sin
        expression: sin(x)
        pipeline: []                    # optional: this base's own pipeline (here: none)
    pipeline:                           # applied in order; the family is the product
      - transform: scale_x
        values: [0.5, 1, 2]             # 1 is scale_x's identity: keeps f, adds no name part
      - transform: clip
        values: [none, 1, 2]            # none keeps f unchanged at this step
      - transform: negate
        optional: true                  # parameterless: applied, or with optional also skipped
      - one_of:                         # alternatives in one step (not their product)
          - {transform: translate, values: [-1, 1]}
          - {transform: offset, values: [-1, 1]}
        optional: true

Rules (decided here, documented for users):
- Each step expands to a list of options; the family is the product of the steps' options
  for every base. ``optional: true`` adds "leave f unchanged" to a step's options.
- ``none`` (or YAML ``null``) in ``values`` and a transform's identity value (0 for
  translate, offset, mix and flat_zone; 1 for scale_x and scale_y) leave f unchanged and
  add nothing to the name, so ``erf|translate=0`` is simply ``erf``.
- A value is a number or the text of a constant expression (``pi/2``).
- Names are ``base|step=value|step``, in pipeline order, with values formatted by
  :func:`funcsearch.transforms.format_value` (``erf|translate=+2``, ``erf|clip=1|mix=0.1``).
- Numbers follow the expression language's rules (finite, decimals at most 1e6 in size:
  ``.inf``, ``.nan`` and ``1e300`` are refused at their line). Every step's result must
  stay within the limits of a built expression (30 ``ratio`` or ``flat_zone`` steps would
  double it 30 times), and every expanded candidate's canonical text must parse back (it
  is what results store); the error names the file, the line of the step and the name.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable

import sympy as sp
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from funcsearch.errors import ConfigError, ExpressionError
from funcsearch.expressions import check_parses_back, parse_expression
from funcsearch.transforms import TRANSFORMS, apply_transform, as_number, format_value, step_label
from funcsearch.yamlio import YamlDocument, format_loc, load_yaml, parse_yaml, validate_yaml

__all__ = ["Step", "Base", "Family", "RawCandidate", "load_family", "parse_family", "expand_family",
           "MAX_EXPANSION"]

MAX_EXPANSION = 100_000
"""Most candidates one family may expand to (a typo in a product should not hang)."""

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]*$"

def _parameter_value(value: Any) -> Any:
    if value is None or (isinstance(value, (int, float, str)) and not isinstance(value, bool)):
        return value
    raise ValueError("a parameter value must be a number, a constant expression such as "
                     f"'pi/2', or none; got {type(value).__name__} {value!r}")


Value = Annotated[Any, AfterValidator(_parameter_value)]


def _transform_names() -> str:
    return ", ".join(TRANSFORMS)


class Step(BaseModel):
    """One pipeline step: a transform with its values, or ``one_of`` several such steps."""

    model_config = ConfigDict(extra="forbid")

    transform: str | None = None
    values: list[Value] | None = None
    one_of: list["Step"] | None = None
    optional: bool = False

    @field_validator("transform")
    @classmethod
    def _known(cls, name: str | None) -> str | None:
        if name is not None and name not in TRANSFORMS:
            raise ValueError(f"unknown transform {name!r}; known: {_transform_names()}")
        return name

    @model_validator(mode="after")
    def _shape(self) -> "Step":
        if (self.transform is None) == (self.one_of is None):
            raise ValueError("a step needs exactly one of 'transform' or 'one_of'")
        if self.one_of is not None:
            if self.values is not None:
                raise ValueError("'values' belongs to each alternative inside 'one_of'")
            if not self.one_of:
                raise ValueError("'one_of' needs at least one alternative")
            return self
        transform = TRANSFORMS[self.transform]  # type: ignore[index]
        if transform.parameter is None and self.values is not None:
            raise ValueError(f"{self.transform} takes no parameter: remove 'values' "
                             "(use 'optional: true' to also keep f unchanged)")
        if transform.parameter is not None and not self.values:
            raise ValueError(f"{self.transform} needs 'values' (a list of {transform.parameter})")
        return self


class Base(BaseModel):
    """A base function of the family."""

    model_config = ConfigDict(extra="forbid")

    name: str
    expression: str
    description: str = ""
    pipeline: list[Step] | None = None

    @field_validator("name")
    @classmethod
    def _readable(cls, name: str) -> str:
        if not re.match(NAME_PATTERN, name) or len(name) > 60:
            raise ValueError(f"base name {name!r} must start with a letter and use only letters, "
                             "digits, '_', '.', '-' (at most 60; no '|', '=' or spaces)")
        return name


class Family(BaseModel):
    """A family file: bases and the pipeline that widens them."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    bases: list[Base] = Field(min_length=1)
    pipeline: list[Step] = Field(default_factory=list)

    _name: str = PrivateAttr(default="family")
    _document: YamlDocument | None = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        """The family name: the stem of its file."""
        return self._name

    @property
    def file(self) -> str | None:
        return self._document.file if self._document else None

    @model_validator(mode="after")
    def _unique_names(self) -> "Family":
        seen: set[str] = set()
        for base in self.bases:
            if base.name in seen:
                raise ValueError(f"base name {base.name!r} is used twice")
            seen.add(base.name)
        return self


@dataclass(frozen=True)
class RawCandidate:
    """One expanded (not yet deduplicated) candidate with where it came from."""

    name: str
    expr: sp.Expr
    family: str
    description: str
    file: str | None
    line: int | None
    steps: int  # number of transforms in the name (0 for a base)


# An option of a step: (label or None for "unchanged", function on the sympy tree, loc).
_Option = tuple[str | None, Callable[[sp.Expr], sp.Expr] | None, tuple[Any, ...]]


def parse_family(text: str, *, file: str = "<string>", name: str | None = None) -> Family:
    """Validate family YAML text (errors: ``file:line: field: message``)."""
    return _from_document(parse_yaml(text, file=file), name or Path(file).stem)


def load_family(path: str | Path) -> Family:
    """Read and validate one family file; its name is the file stem."""
    path = Path(path)
    return _from_document(load_yaml(path), path.stem)


def _from_document(doc: YamlDocument, name: str) -> Family:
    if not isinstance(doc.data, dict):
        raise doc.error("a family file must be a mapping with 'bases' (and 'pipeline')")
    family = validate_yaml(Family, doc)
    family._name = name
    family._document = doc
    return family


def _error(family: Family, message: str, loc: tuple[Any, ...]) -> ConfigError:
    if family._document is not None:
        return family._document.error(message, loc)
    return ConfigError(message, field=format_loc(loc))


def _value_option(family: Family, transform: str, value: Value,
                  loc: tuple[Any, ...]) -> _Option:
    spec = TRANSFORMS[transform]
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return (None, None, loc)
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 as text: a plain number keeps its number spelling
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, str):
        doc = family._document
        parsed = parse_expression(value, file=doc.file if doc else None,
                                  line=doc.line_of(loc) if doc else None, field=format_loc(loc))
        constant = parsed.expr
        if constant.free_symbols:
            raise _error(family, f"a parameter must be a constant, got {value!r}", loc)
        number = constant
        label_value: float | str = parsed.text
        numeric = float(sp.N(constant, 17))
        if constant.is_Rational and len(format_value(numeric)) <= 10:
            label_value = numeric  # 1/2 is named like 0.5; 1/3 keeps its text
    else:
        try:
            number = as_number(value)
        except (TypeError, ValueError) as exc:
            raise _error(family, f"{transform}: {exc}", loc) from None
        label_value = value
        numeric = float(value)
    problem = spec.check_value(numeric)
    if problem:
        raise _error(family, problem, loc)
    if spec.identity is not None and numeric == spec.identity:
        return (None, None, loc)
    return (step_label(transform, label_value),
            lambda f, _t=transform, _n=number: apply_transform(f, _t, _n), loc)


def _step_options(family: Family, step: Step, loc: tuple[Any, ...]) -> list[_Option]:
    options: list[_Option] = []
    if step.optional:
        options.append((None, None, loc))
    if step.one_of is not None:
        for index, alternative in enumerate(step.one_of):
            options.extend(_step_options(family, alternative, loc + ("one_of", index)))
        return options
    transform = step.transform
    assert transform is not None
    if TRANSFORMS[transform].parameter is None:
        options.append((step_label(transform), lambda f, _t=transform: apply_transform(f, _t), loc))
        return options
    for index, value in enumerate(step.values or []):
        options.append(_value_option(family, transform, value, loc + ("values", index)))
    return options


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> sp.Expr:
    return parse_expression(text).expr


def _parse_base(text: str, *, file: str | None, line: int | None, field: str) -> sp.Expr:
    """Parse a base expression, cached by text (the same base appears in many files);
    a failure is re-raised with its location."""
    try:
        return _parse_text(text)
    except ExpressionError as exc:
        raise exc.located(file=file, line=line, field=field) from None


def expand_family(family: Family) -> list[RawCandidate]:
    """Every base times the product of its pipeline's options, named ``base|step=value``.

    The same name produced twice within the family (e.g. ``values: [none, 0]``) is kept
    once. Errors name the file, line and field of the offending value or expression."""
    doc = family._document
    out: list[RawCandidate] = []
    seen: set[str] = set()
    for b_index, base in enumerate(family.bases):
        loc = ("bases", b_index, "expression")
        line = doc.line_of(loc) if doc else None
        expr = _parse_base(base.expression, file=doc.file if doc else None, line=line,
                           field=format_loc(loc))
        if base.pipeline is not None:
            steps, prefix = base.pipeline, ("bases", b_index, "pipeline")
        else:
            steps, prefix = family.pipeline, ("pipeline",)
        options = [_step_options(family, step, prefix + (i,)) for i, step in enumerate(steps)]
        total = 1
        for choice in options:
            total *= max(len(choice), 1)
        if total > MAX_EXPANSION:
            raise _error(family, f"base {base.name!r} expands to {total} candidates, more than "
                         f"{MAX_EXPANSION}", prefix)
        for combination in itertools.product(*options):
            name_parts = [base.name]
            current = expr
            last_loc: tuple[Any, ...] = loc
            for label, apply, step_loc in combination:
                if apply is None:
                    continue
                try:
                    current = apply(current)
                except ExpressionError as exc:
                    raise _error(family, f"{exc.message} (in {'|'.join(name_parts + [label or ''])})",
                                 step_loc) from None
                name_parts.append(label or "")
                last_loc = step_loc
            name = "|".join(name_parts)
            if len(name_parts) > 1:
                try:  # the candidate's canonical text must parse back (it is what is stored)
                    check_parses_back(current)
                except ExpressionError as exc:
                    raise _error(family, f"{exc.message} (in {name})", last_loc) from None
            if name in seen:
                continue
            seen.add(name)
            out.append(RawCandidate(name=name, expr=current, family=family.name,
                                    description=base.description, file=family.file,
                                    line=line, steps=len(name_parts) - 1))
    return out
