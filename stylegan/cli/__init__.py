"""The ``stylegan`` command line: one click group, one small module per command.

:func:`main` is the console entry point. It turns every user-facing problem (StyleGANError and click
usage errors alike) into one line ``error: <what> (<how to fix>)`` on stderr with exit code 2.
"""

from __future__ import annotations

import importlib
from typing import Sequence

import click

from stylegan import __version__
from stylegan.errors import StyleGANError
from stylegan.limits import MAX_ERROR_LINE

USAGE_EXIT = 2
INTERRUPT_EXIT = 130  # 128 + SIGINT, what shells report for Ctrl-C


# command name → "module:attribute". Modules are imported only when their command runs (or for --help), so
# `stylegan generate` does not pay for importing the training or metrics code.
COMMANDS: dict[str, str] = {
    "generate": "stylegan.cli.generate:generate",
    "style-mix": "stylegan.cli.style_mix:style_mix_command",
    "info": "stylegan.cli.info:info",
    "convert": "stylegan.cli.convert:convert",
    "dataset": "stylegan.cli.dataset:dataset",
    "train": "stylegan.cli.train:train",
    "lerp-video": "stylegan.cli.video:lerp_video",
    "style-mix-video": "stylegan.cli.video:style_mix_video",
    "project": "stylegan.cli.project:project_command",
    "mass-project": "stylegan.cli.mass_project:mass_project_command",
    "metrics": "stylegan.cli.metrics:metrics",
    "figures": "stylegan.cli.figures:figures",
    "explore": "stylegan.cli.explore:explore",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are looked up in :data:`COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            from stylegan.cli.options import refuse_empty_paths

            module_name, attribute = COMMANDS[name].split(":")
            self.add_command(refuse_empty_paths(getattr(importlib.import_module(module_name), attribute)), name)
        return self.commands.get(name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="stylegan", message="%(prog)s %(version)s")
def cli() -> None:
    """StyleGAN toolkit: load official networks safely, generate, mix, train, measure, explore."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit, 1) - 1] + "…"


def _error(what: str, fix: str | None = None) -> None:
    """Print ``error: <what> (<fix>)`` as one line of at most MAX_ERROR_LINE characters.

    The last line of defence: readers quote at most MAX_QUOTE characters of a file, but an error line must
    stay readable whatever reached it. A long ``what`` is cut (ending in "…") so the fix still shows.
    """
    what = _one_line(what)
    tail = f" ({_cut(_one_line(fix), MAX_ERROR_LINE // 2)})" if fix else ""
    click.echo(_cut(f"error: {what}", MAX_ERROR_LINE - len(tail)) + tail, err=True)


def main(args: Sequence[str] | None = None) -> int:
    """Run the CLI on ``args`` (default ``sys.argv[1:]``) and return the exit code."""
    try:
        rv = cli.main(args=list(args) if args is not None else None, prog_name="stylegan", standalone_mode=False)
    except StyleGANError as e:
        _error(e.what, e.fix)
        return USAGE_EXIT
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help())
        return 0
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "stylegan"
        _error(e.format_message(), f"see '{where} --help'")
        return USAGE_EXIT
    except click.ClickException as e:
        _error(e.format_message(), "check the command line")
        return USAGE_EXIT
    except (click.Abort, KeyboardInterrupt):
        return INTERRUPT_EXIT
    return rv if isinstance(rv, int) else 0


__all__ = ["cli", "main"]
