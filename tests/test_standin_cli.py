"""The stand-in stays out of the harvester: the import graph, and `demo` / `standin` handed over.

The commands themselves run end to end in test_cli.py (`demo`) and test_standin.py (`standin`,
through `python -m harvester`); here, what the hand-over does and what happens without the stand-in.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harvester import cli
from tmdb_standin import __main__ as standin_main

HARVESTER = Path(cli.__file__).resolve().parent


class Exec(Exception):
    """Raised by the fake os.execv: the process would have become this command."""


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    calls: list[tuple[str, list[str]]] = []

    def fake_execv(path: str, args: list[str]) -> NoReturn:
        calls.append((path, list(args)))
        raise Exec

    monkeypatch.setattr(cli.os, "execv", fake_execv)
    return calls


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_harvester_module_imports_the_standin() -> None:
    sources = sorted(HARVESTER.rglob("*.py"))
    assert len(sources) > 10 and not (HARVESTER / "standin").exists()
    offenders = {
        str(p.relative_to(HARVESTER)): m
        for p in sources
        if (m := sorted(m for m in _imported_modules(p) if m.split(".")[0] == "tmdb_standin"))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--movies", "5", "--out", "x"],
        ["-v", "demo"],
        ["standin", "--port", "0", "--latency-ms", "100", "200"],
    ],
)
def test_demo_and_standin_become_the_standin_program(
    argv: list[str], execs: list[tuple[str, list[str]]]
) -> None:
    with pytest.raises(Exec):
        cli.main(argv)
    assert execs == [(sys.executable, [sys.executable, "-m", "tmdb_standin", *argv])]


def test_without_the_standin_the_commands_fail_in_one_line(
    monkeypatch: pytest.MonkeyPatch, execs: list[tuple[str, list[str]]], capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "tmdb_standin" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(cli.importlib.util, "find_spec", find_spec)  # as in the Lambda zip
    for argv in (["demo"], ["standin", "--port", "0"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("harvester: error: ") and "tmdb_standin" in err
    assert execs == []


def test_harvester_help_still_lists_demo_and_standin() -> None:
    text = cli.build_parser().format_help()
    assert "demo" in text and "standin" in text


def test_the_standin_program_serves_as_standin_or_serve(capsys: pytest.CaptureFixture[str]) -> None:
    text = standin_main.build_parser().format_help()
    assert "demo" in text and "standin" in text and "serve" in text
    for command in ("standin", "serve"):
        with pytest.raises(SystemExit) as exc:
            standin_main.main(["-v", command, "--latency-ms", "5", "1"])  # reached the server's parser
        assert exc.value.code == 2 and "latency" in capsys.readouterr().err


def test_the_demo_refuses_bad_options_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(standin_main, "setup_logging", lambda verbose, secrets: None)  # keep pytest's
    assert standin_main.main(["demo", "--movies", "0"]) == 2
    assert capsys.readouterr().err == "harvester: error: --movies must be >= 1\n"
