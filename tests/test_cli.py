"""The entry point: usage mistakes and user errors end in one clear message, never a traceback."""

from __future__ import annotations

import sys

import pytest

from funcsearch.cli import main


@pytest.mark.parametrize("argv, message", [
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
    (["search", "--bogus"], "No such option: --bogus"),
    (["leaderboard", "/nonexistent/results"], "results folder not found"),
])
def test_mistakes_exit_with_a_message_and_no_traceback(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       argv: list[str], message: str) -> None:
    monkeypatch.setattr(sys, "argv", ["funcsearch", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err + captured.out


def test_help_exits_cleanly(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["funcsearch", "--help"])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert "studies" in capsys.readouterr().out
