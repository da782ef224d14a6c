"""Candidates: load family files and deduplicate them by fingerprint.

    candidates = load_candidates(["candidates/"])        # expanded + deduplicated

(The property-checked catalog table is :func:`funcsearch.catalog.build_catalog`.)

A folder means the ``*.yaml`` / ``*.yml`` files directly inside it, in name order (so
``candidates/`` is the catalog and ``candidates/property_studies/`` is asked for
separately). Two spellings of one function (same numeric fingerprint, see
:func:`funcsearch.expressions.fingerprint`) become one candidate that keeps every name.
Its primary name is a built-in name if it has one (``erf`` rather than ``derf``), else the
name with the fewest transformation steps, else the first loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from funcsearch.errors import ConfigError, InputError
import sympy as sp

from funcsearch.expressions import fingerprint, to_text
from funcsearch.families import RawCandidate, expand_family, load_family

__all__ = ["Candidate", "family_files", "load_raw_candidates", "load_candidates", "deduplicate",
           "find_candidate"]


@dataclass(frozen=True)
class Candidate:
    """One unique function of the catalog, with every name that produced it."""

    name: str  # primary stable name, e.g. "erf|translate=+2"
    expression: str  # canonical expression text in x, parseable by parse_expression
    names: tuple[str, ...]  # every name that produced the same function (dedup keeps all)
    family: str  # family (file stem) of the primary name
    fingerprint: str  # numeric fingerprint (dedup key)
    description: str = ""


def family_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (their ``*.yaml``/``*.yml``, not recursive) into files."""
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise InputError("no family files (*.yaml) in this folder", file=str(path))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("no such file or folder", file=str(path))
    unique: list[Path] = []
    seen: set[Path] = set()
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


def load_raw_candidates(paths: Sequence[str | Path]) -> list[RawCandidate]:
    """Every expanded candidate of every family file, before deduplication."""
    raw: list[RawCandidate] = []
    for file in family_files(paths):
        raw.extend(expand_family(load_family(file)))
    return raw


def _primary_key(index: int, item: RawCandidate) -> tuple[int, int, int]:
    from funcsearch.named import BUILTIN_FUNCTIONS

    return (0 if item.name in BUILTIN_FUNCTIONS else 1, item.steps, index)


def deduplicate(raw: Sequence[RawCandidate]) -> list[Candidate]:
    """Merge raw candidates with equal fingerprints; keep all names, pick the primary.

    One name that stands for two different functions (e.g. two files both defining a base
    ``smooth`` differently) is an error naming both places."""
    return [candidate for candidate, _ in _deduplicate(raw)]


def _deduplicate(raw: Sequence[RawCandidate]) -> list[tuple[Candidate, "sp.Expr"]]:
    by_name: dict[str, tuple[str, RawCandidate]] = {}
    groups: dict[str, list[tuple[int, RawCandidate]]] = {}
    known: dict["sp.Expr", str] = {}  # the same tree from several files is hashed once
    for index, item in enumerate(raw):
        key = known.get(item.expr)
        if key is None:
            key = known[item.expr] = fingerprint(item.expr)
        previous = by_name.get(item.name)
        if previous is not None and previous[0] != key:
            other = previous[1]
            raise ConfigError(
                f"name {item.name!r} stands for two different functions: "
                f"{to_text(other.expr)} ({other.file}:{other.line}) and {to_text(item.expr)}",
                file=item.file, line=item.line)
        by_name[item.name] = (key, item)
        groups.setdefault(key, []).append((index, item))
    out: list[tuple[Candidate, sp.Expr]] = []
    for key, members in groups.items():
        ordered = sorted(members, key=lambda pair: _primary_key(*pair))
        primary = ordered[0][1]
        names = tuple(dict.fromkeys(item.name for _, item in ordered))
        candidate = Candidate(name=primary.name, expression=to_text(primary.expr), names=names,
                              family=primary.family, fingerprint=key,
                              description=primary.description)
        out.append((candidate, primary.expr))
    return out


def load_candidates(paths: Sequence[str | Path]) -> list[Candidate]:
    """Files or folders of family YAML, expanded and deduplicated (first-seen order)."""
    return deduplicate(load_raw_candidates(paths))


def find_candidate(candidates: Iterable[Candidate], name: str) -> Candidate | None:
    """The candidate that has ``name`` among its names, or None."""
    for candidate in candidates:
        if name == candidate.name or name in candidate.names:
            return candidate
    return None
