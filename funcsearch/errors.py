"""User-facing errors: the CLI prints them as one clear line, never a traceback."""

from __future__ import annotations


class FuncsearchError(Exception):
    """Base of every error caused by user input or environment, not by a bug."""


class Terminated(Exception):
    """The process was asked to stop (SIGTERM: ``kill``, a job scheduler's preemption) during
    a search: handled as Ctrl-C is (runs in flight cancelled, finished trials kept), and the
    CLI exits 143 with one line instead of Ray's silent ``sys.exit(15)``."""


class InputError(FuncsearchError):
    """Bad user input, located as precisely as we know: ``file:line: field: message``."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def located(self, *, file: str | None = None, line: int | None = None,
                field: str | None = None) -> "InputError":
        """Return a copy with missing location parts filled in."""
        return type(self)(
            self.message,
            file=self.file or file,
            line=self.line if self.line is not None else line,
            field=self.field or field,
        )

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        if self.field:
            where += f"{self.field}: "
        return where + self.message


class ExpressionError(InputError):
    """An expression that the safe parser refuses or that cannot be compiled."""


class ConfigError(InputError):
    """A YAML file (family, profile, search config) that does not validate."""


class DataError(InputError):
    """A dataset path or format that cannot be loaded."""
