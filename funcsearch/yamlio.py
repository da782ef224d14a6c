"""Safe YAML loading that remembers where every value came from.

Why: a user who writes a bad family, profile or search config must be told the file,
the line and the field, e.g. ``candidates/mine.yaml:12: pipeline[1].values[0]: ...``.
PyYAML's safe loader builds plain Python objects (no tags, no code); we walk the same
node tree to record the line of every mapping key and sequence item, then translate
pydantic's error ``loc`` tuples into those lines.

    doc = load_yaml("candidates/mine.yaml")
    family = validate_yaml(Family, doc)            # ConfigError: file:line: field: msg
    doc.line_of(("bases", 2, "expression"))        # -> 14

Limits before work: a file larger than :data:`MAX_BYTES` is refused before it is read in
full, a document nested deeper than :data:`MAX_YAML_DEPTH` levels is refused while it is
composed (PyYAML's composer recurses once per level), and one that expands to more than
:data:`MAX_NODES` values (aliases counted each time they are used) is refused too. Every
problem is one ConfigError line with the file and, where known, the line. Merge keys
(``<<: *defaults``, ``<<: [*a, *b]``) work as in YAML 1.1: explicit keys win over merged
ones, and a merged value is located at the line where it is written (under its anchor).
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

MAX_BYTES = 4 * 1024 * 1024
"""Largest YAML file (or text) read: 4 MiB. The catalog's largest file is a few KB; a
50 MB file took minutes and gigabytes to be refused after parsing."""

MAX_YAML_DEPTH = 100
"""Most nested levels (mappings and sequences) a document may have."""


def _size_text(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size} bytes"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (a silent overwrite is a bug) and
    documents nested deeper than :data:`MAX_YAML_DEPTH` levels (before Python's recursion
    limit is met in the composer)."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self._file = file
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels",
                                  file=self._file, line=mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mapping_entries(node: yaml.MappingNode, loader: _LineLoader, file: str,
                     path: Path_) -> dict[Any, tuple[yaml.Node, yaml.Node]]:
    """key -> ``(key node, value node)`` of a mapping as the constructor will build it:
    merge keys (``<<: *defaults``) are expanded by PyYAML's own ``flatten_mapping`` (so the
    lines agree with the data), and a later entry wins, as in the dict. Two explicit
    entries with the same key are an error; an explicit key may override a merged one."""
    explicit = {id(key_node) for key_node, _ in node.value
                if key_node.tag != "tag:yaml.org,2002:merge"}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" and not (
                isinstance(value_node, yaml.MappingNode) or (
                    isinstance(value_node, yaml.SequenceNode)
                    and all(isinstance(item, yaml.MappingNode) for item in value_node.value))):
            raise ConfigError("a merge key (<<) needs a mapping or a list of mappings, "
                              "e.g. <<: *defaults", file=file, line=key_node.start_mark.line + 1)
    try:
        loader.flatten_mapping(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(f"invalid merge key (<<): {_one_line(exc.problem or str(exc))}",
                          file=file, line=mark.line + 1 if mark else None) from None
    entries: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
    explicit_lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ConfigError("mapping keys must be plain values", file=file, line=line) from None
        if isinstance(key, (list, dict, set, tuple)):
            raise ConfigError("mapping keys must be plain values", file=file, line=line)
        if id(key_node) in explicit:
            if key in explicit_lines:
                raise ConfigError(f"duplicate key {key!r} (first at line {explicit_lines[key]})",
                                  file=file, line=line, field=format_loc(path + (str(key),)))
            explicit_lines[key] = line
        entries.pop(key, None)
        entries[key] = (key_node, value_node)
    return entries


def _record(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: _LineLoader,
            file: str) -> None:
    if len(lines) > MAX_NODES:
        raise ConfigError(f"document too large: more than {MAX_NODES} values "
                          "(after expanding aliases)", file=file, line=node.start_mark.line + 1)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, (key_node, value_node) in _mapping_entries(node, loader, file, path).items():
            child = path + (key if isinstance(key, (str, int)) else str(key),)
            lines[child] = key_node.start_mark.line + 1
            _record(value_node, child, lines, loader, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = path + (index,)
            lines[child] = item.start_mark.line + 1
            _record(item, child, lines, loader, file)


def parse_yaml(text: str, file: str = "<string>") -> YamlDocument:
    """Parse YAML text safely into a `YamlDocument`; every problem is a one-line ConfigError
    with the file and (where known) the line."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"YAML text of {_size_text(len(text))} is larger than the limit of "
                          f"{_size_text(MAX_BYTES)}", file=file)
    loader = None
    try:
        loader = _LineLoader(text, file)
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
        raise ConfigError(f"invalid YAML: {_one_line(problem)}", file=file, line=line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise ConfigError(f"invalid YAML: unacceptable character #x{exc.character:04x} "
                          "(special characters are not allowed)", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {_one_line(str(exc))}", file=file) from None
    except RecursionError:
        raise ConfigError(f"YAML nested too deeply (more than {MAX_YAML_DEPTH} levels)",
                          file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(data=data, file=file, lines=lines)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_yaml(path: str | Path) -> YamlDocument:
    """Read and parse a YAML file; a missing, unreadable, too large or non-UTF-8 file is a
    ConfigError (the size is checked before the file is read in full)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a YAML file", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {_one_line(exc.strerror or str(exc))}",
                          file=str(path)) from None
    if len(raw) > MAX_BYTES:
        try:
            size = _size_text(path.stat().st_size)
        except OSError:
            size = f"more than {_size_text(MAX_BYTES)}"
        raise ConfigError(f"file is {size}, larger than the limit of {_size_text(MAX_BYTES)} "
                          "for a YAML file", file=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column} "
                          "cannot be decoded (save the file as UTF-8)", file=str(path),
                          line=line) from None
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

    One line: the first problem with its file, line and field, and how many other places are
    wrong (the alternatives pydantic tries for one union field count as one place)."""
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        located: dict[str, tuple[int | None, str, str]] = {}
        for err in errors:
            loc = tuple(err.get("loc", ()))
            data_loc = _data_loc(doc, loc, keep_last=err.get("type") == "missing")
            where = format_loc(data_loc)
            located.setdefault(where, (doc.line_of(data_loc), where, _pydantic_message(err)))
        line, where, message = next(iter(located.values()))
        others = len(located) - 1
        extra = f" (and {others} more problem{'s' if others > 1 else ''} in this file)" if others else ""
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
