"""The command group: every registered command imports and shows its help."""

from __future__ import annotations

import pytest

from stylegan.cli import COMMANDS, cli, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_loads_and_has_help(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"stylegan {name}" in out and "Options:" in out


def test_group_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_a_one_line_error(capsys):
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_commands_resolve_to_click_commands():
    for name in COMMANDS:
        assert cli.get_command(None, name).name == name


def test_starting_the_cli_does_not_import_torch():
    """So Ctrl-C while the command starts up is caught by main() (exit 130), never a traceback."""
    import subprocess
    import sys
    code = "import sys, stylegan, stylegan.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
