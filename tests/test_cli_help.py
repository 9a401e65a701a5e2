"""The command list of `contagion --help` reads as one summary per command."""

from __future__ import annotations

import inspect

from typer.testing import CliRunner

from contagion.cli import app


def test_each_command_is_listed_by_its_whole_first_paragraph() -> None:
    groups = [app, *(group.typer_instance for group in app.registered_groups)]
    commands = [c for g in groups if g is not None for c in g.registered_commands]
    assert len(commands) > 20
    for command in commands:
        doc = inspect.getdoc(command.callback)
        assert doc, command.callback
        first = doc.split("\n\n")[0]
        assert command.short_help == " ".join(first.split()), command.callback
    listing = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    # a summary longer than a line of the box used to break where its docstring's line did
    assert "marts, snapshots; then run the checks of sql/checks" in listing
