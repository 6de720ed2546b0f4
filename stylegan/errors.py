"""The one exception family for problems a user can fix.

The CLI catches :class:`StyleGANError` and prints ``error: <what> (<how to fix>)`` with exit code 2,
so every message must stand on one line and say both what is wrong and what to do about it.

The same errors reach Python callers, who pass arguments, not flags. A message that names a setting
therefore names it both ways through :func:`setting`: ``num_steps (--num-steps) is 0, but must be at least 1``.
"""

from __future__ import annotations


def setting(name: str, flag: str | None = None) -> str:
    """A setting as messages name it: the Python name, then the command-line flag in parentheses.

    ``flag`` defaults to ``--`` plus the name with dashes for underscores; pass it where the command
    spells the option differently (``setting("truncation_psi", "--trunc")``), or ``""`` for a setting
    that only Python callers have (the bare name is returned).
    """
    if flag == "":
        return name
    return f"{name} ({flag or '--' + name.replace('_', '-')})"


class StyleGANError(Exception):
    """A user-facing problem: bad path, bad seeds, wrong shape, unsafe pickle, ..."""

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} ({fix})" if fix else what)


class UnsafePickleError(StyleGANError):
    """A pickle asked for a global that is not on the allow-list; nothing from it was executed."""
