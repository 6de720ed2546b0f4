"""The ``stylegan`` command line: one click group, one small module per command.

:func:`main` is the console entry point. It turns every user-facing problem (StyleGANError and click
usage errors alike) into one line ``error: <what> (<how to fix>)`` on stderr with exit code 2.
"""

from __future__ import annotations

from typing import Sequence

import click

from stylegan.cli.convert import convert
from stylegan.cli.generate import generate
from stylegan.cli.info import info
from stylegan.cli.style_mix import style_mix_command
from stylegan.errors import StyleGANError

USAGE_EXIT = 2
INTERRUPT_EXIT = 130  # 128 + SIGINT, what shells report for Ctrl-C


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """StyleGAN2(-ADA) toolkit: load official networks safely, generate, mix, convert."""


cli.add_command(generate)
cli.add_command(style_mix_command)
cli.add_command(info)
cli.add_command(convert)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(args: Sequence[str] | None = None) -> int:
    """Run the CLI on ``args`` (default ``sys.argv[1:]``) and return the exit code."""
    try:
        rv = cli.main(args=list(args) if args is not None else None, prog_name="stylegan", standalone_mode=False)
    except StyleGANError as e:
        click.echo(f"error: {_one_line(str(e))}", err=True)
        return USAGE_EXIT
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help())
        return 0
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "stylegan"
        click.echo(f"error: {_one_line(e.format_message())} (see '{where} --help')", err=True)
        return USAGE_EXIT
    except click.ClickException as e:
        click.echo(f"error: {_one_line(e.format_message())} (check the command line)", err=True)
        return USAGE_EXIT
    except (click.Abort, KeyboardInterrupt):
        return INTERRUPT_EXIT
    return rv if isinstance(rv, int) else 0


__all__ = ["cli", "main"]
