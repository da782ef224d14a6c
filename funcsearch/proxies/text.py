"""Text for the character-level language-model proxy: the embedded default and local files.

``load_text(path)`` returns a :class:`TextDataset`: the text encoded as int64 character ids,
a fixed train / validation split by position (the last ``VAL_FRACTION`` of the text is the
validation split, never tied to a trial seed), the vocabulary and a content fingerprint.
Nothing is ever downloaded.

Accepted sources:

- ``None`` -> the source text of CPython 3.11.7's ``pydoc_data/topics.py`` (the help topics
  of ``help()``, about 750 KB of English prose, grammar and code; PSF licence), shipped
  gzipped in ``funcsearch/data/text``. Each Python version has its own ``topics.py``: reading
  the installed one made lm train on another text under Python 3.12 with the same trial key,
  so the default is this fixed copy on every Python.
- a UTF-8 text file (any name);
- a folder: its ``*.txt`` files (not recursive), sorted by name and concatenated.

Vocabulary: the sorted set of the characters of the whole text (train and validation), so
every character has its own id, nothing is mapped to an "unknown" symbol and bits per
character are those of the real text. (A fixed printable-ASCII set would keep the vocabulary
the same across datasets, but would fold every non-ASCII character - the default text has
curly quotes, dashes, a degree sign - into one symbol and so measure a different text.)
The price: ids are only comparable within one dataset, which is all a proxy compares.

A text that is missing, empty, not UTF-8 (binary), has more than ``MAX_VOCAB`` distinct
characters or is too short for ``MIN_SPLIT_CHARS`` characters in each split raises
``DataError`` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from funcsearch.errors import DataError

#: the last fraction of the text (by position) is the validation split
VAL_FRACTION = 0.1
#: each split must hold at least this many characters (one default context window + 1)
MIN_SPLIT_CHARS = 129
#: more distinct characters than this is not a character-level text (the head would dominate)
MAX_VOCAB = 1024


@dataclass(frozen=True, eq=False)
class TextDataset:
    """A character-level corpus: ``train`` and ``val`` are 1-D int64 ids into ``vocab``."""

    name: str
    train: Tensor
    val: Tensor
    vocab: str
    fingerprint: str
    source: str = ""

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> Tensor:
        """Ids of ``text`` (every character must be in the vocabulary)."""
        index = {c: i for i, c in enumerate(self.vocab)}
        return torch.tensor([index[c] for c in text], dtype=torch.int64)

    def decode(self, ids: Tensor) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


#: the default text: CPython 3.11.7's Lib/pydoc_data/topics.py, gzipped (gzip -9 -n)
DEFAULT_TEXT = "pydoc_topics_py3.11.7.txt.gz"


def default_text_path() -> str:
    """Where the installed package keeps the default text."""
    return str(importlib.resources.files("funcsearch") / "data" / "text" / DEFAULT_TEXT)


def load_text(path: str | Path | None = None) -> TextDataset:
    """Load the text at ``path`` (see the module docstring); ``None`` = the embedded default."""
    if path is None:
        return load_default_text()
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise DataError("text path does not exist", file=str(path))
    files = _text_files(resolved)
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _load_files_cached(str(resolved), stamp)


@lru_cache(maxsize=1)
def load_default_text() -> TextDataset:
    """The encoded default text (cached: trials in one process read it once)."""
    origin = Path(default_text_path())
    try:
        raw = gzip.decompress(origin.read_bytes())
    except (OSError, EOFError) as error:
        raise DataError(f"the packaged default text is unreadable ({error}): reinstall funcsearch",
                        file=str(origin)) from None
    return build_dataset("pydoc-topics", raw.decode("utf-8"), str(origin))


@lru_cache(maxsize=4)
def _load_files_cached(path_text: str, stamp: tuple[tuple[str, int, int], ...]) -> TextDataset:
    """Keyed by the files' paths, modification times and sizes, so an edited file is re-read."""
    texts = [_read_text(Path(name)) for name, _, _ in stamp]
    return build_dataset(Path(path_text).stem or "text", "".join(texts), path_text)


def _text_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.txt") if p.is_file())
        if not files:
            raise DataError("folder holds no .txt files", file=str(path))
        return files
    if not path.is_file():
        raise DataError("not a regular file or folder", file=str(path))
    return [path]


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or error}", file=str(path)) from None
    if not raw:
        raise DataError("text file is empty", file=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text (binary?): undecodable byte at offset {error.start}",
                        file=str(path)) from None
    if "\x00" in text:
        raise DataError(f"not a text file (binary?): NUL character at offset {text.index(chr(0))}",
                        file=str(path))
    return text.removeprefix("\ufeff")


def build_dataset(name: str, text: str, source: str) -> TextDataset:
    """Vocabulary, ids, the fixed split and the fingerprint of ``text``."""
    total = len(text)
    val_chars = math.ceil(total * VAL_FRACTION)
    if total - val_chars < MIN_SPLIT_CHARS or val_chars < MIN_SPLIT_CHARS:
        need = math.ceil(MIN_SPLIT_CHARS / VAL_FRACTION)
        raise DataError(f"text too short: {total} characters, need at least {need} "
                        f"({MIN_SPLIT_CHARS} in the last {VAL_FRACTION:.0%} for validation)",
                        file=source)
    vocab = "".join(sorted(set(text)))
    if len(vocab) > MAX_VOCAB:
        raise DataError(f"{len(vocab)} distinct characters, more than the {MAX_VOCAB} "
                        "a character-level proxy takes", file=source)
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.int64)
    split = total - val_chars
    digest = hashlib.sha256(text.encode("utf-8"))
    digest.update(f"|val={VAL_FRACTION}".encode())
    return TextDataset(name=name, train=ids[:split], val=ids[split:], vocab=vocab,
                       fingerprint=f"text-{name}-{digest.hexdigest()[:16]}", source=source)
