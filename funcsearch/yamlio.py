"""Safe YAML loading that remembers where every value came from.

Why: a user who writes a bad family, profile or search config must be told the file,
the line and the field, e.g. ``candidates/mine.yaml:12: pipeline[1].values[0]: ...``.
PyYAML's safe loader builds plain Python objects (no tags, no code); we walk the same
node tree to record the line of every mapping key and sequence item, then translate
pydantic's error ``loc`` tuples into those lines.

    doc = load_yaml("candidates/mine.yaml")
    family = validate_yaml(Family, doc)            # ConfigError: file:line: field: msg
    doc.line_of(("bases", 2, "expression"))        # -> 14
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from funcsearch.errors import ConfigError

Path_ = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)

__all__ = ["YamlDocument", "load_yaml", "parse_yaml", "validate_yaml", "format_loc"]


@dataclass
class YamlDocument:
    """Plain data from a YAML file plus the 1-based line of every key and item."""

    data: Any
    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the deepest known prefix of ``loc`` (unknown parts are skipped).

        Pydantic inserts non-data parts into ``loc`` (union member or validator names);
        those are skipped, so the line is always that of the nearest real YAML node.
        """
        best = self.lines.get((), None)
        path: Path_ = ()
        for part in loc:
            candidate = path + (part,)
            if candidate in self.lines:
                path = candidate
                best = self.lines[path]
            elif isinstance(part, str) and part.isdigit() and path + (int(part),) in self.lines:
                path = path + (int(part),)
                best = self.lines[path]
        return best

    def error(self, message: str, loc: Sequence[str | int] = ()) -> ConfigError:
        """A ConfigError located at ``loc`` in this document."""
        return ConfigError(message, file=self.file, line=self.line_of(loc),
                           field=format_loc(loc) or None)


def format_loc(loc: Sequence[str | int]) -> str:
    """``("pipeline", 1, "values", 0)`` -> ``pipeline[1].values[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


MAX_NODES = 200_000
"""Most YAML nodes a document may expand to (aliases counted each time they are used),
so that an alias bomb ("billion laughs") is refused instead of eating the memory."""


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (a silent overwrite is a bug)."""


def _record(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: _LineLoader,
            file: str) -> None:
    if len(lines) > MAX_NODES:
        raise ConfigError(f"document too large: more than {MAX_NODES} values "
                          "(after expanding aliases)", file=file, line=node.start_mark.line + 1)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (list, dict)):
                raise ConfigError("mapping keys must be plain values", file=file, line=line)
            if key in seen:
                raise ConfigError(
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    file=file, line=line, field=format_loc(path + (str(key),)))
            seen[key] = line
            child = path + (key if isinstance(key, (str, int)) else str(key),)
            lines[child] = line
            _record(value_node, child, lines, loader, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = path + (index,)
            lines[child] = item.start_mark.line + 1
            _record(item, child, lines, loader, file)


def parse_yaml(text: str, file: str = "<string>") -> YamlDocument:
    """Parse YAML text safely into a `YamlDocument`; syntax errors become ConfigError."""
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(data=None, file=file, lines={(): 1})
        lines: dict[Path_, int] = {}
        _record(node, (), lines, loader, file)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, file=file, lines=lines)


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse a YAML file; a missing or unreadable file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=str(path)) from None
    return parse_yaml(text, file=str(path))


def _pydantic_message(err: dict[str, Any]) -> str:
    message = str(err.get("msg", "invalid value"))
    if message.startswith("Value error, "):
        return message[len("Value error, "):]
    if err.get("type") in ("missing", "extra_forbidden"):
        return message.lower()
    value = err.get("input")
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = repr(value)
        if len(text) > 60:
            text = text[:57] + "..."
        message += f" (got {text})"
    return message


def validate_yaml(model: type[ModelT], doc: YamlDocument, *,
                  context: dict[str, Any] | None = None) -> ModelT:
    """Validate ``doc.data`` with a pydantic model; errors become one located ConfigError.

    The first error carries the line; further errors are appended on following lines so
    the user sees everything that is wrong in one go.
    """
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        located = []
        for err in errors:
            loc = tuple(err.get("loc", ()))
            data_loc = _data_loc(doc, loc, keep_last=err.get("type") == "missing")
            located.append((doc.line_of(data_loc), format_loc(data_loc), _pydantic_message(err)))
        line, where, message = located[0]
        extra = "".join(
            f"\n  {doc.file}:{ln}: {fld + ': ' if fld else ''}{msg}" for ln, fld, msg in located[1:]
        )
        raise ConfigError(message + extra, file=doc.file, line=line, field=where or None) from None


def _data_loc(doc: YamlDocument, loc: Path_, *, keep_last: bool = False) -> Path_:
    """Drop the parts of a pydantic loc that are not keys/indices of the YAML data.

    With ``keep_last`` a trailing part naming a missing key is kept
    (``bases[0].expression`` when that key is absent).
    """
    path: Path_ = ()
    for i, part in enumerate(loc):
        candidate = path + (part,)
        if candidate in doc.lines:
            path = candidate
        elif keep_last and i == len(loc) - 1 and isinstance(part, str):
            path = candidate
    return path
