"""The one exception family for problems a user can fix.

The CLI catches :class:`StyleGANError` and prints ``error: <what> (<how to fix>)`` with exit code 2,
so every message must stand on one line and say both what is wrong and what to do about it.
"""

from __future__ import annotations


class StyleGANError(Exception):
    """A user-facing problem: bad path, bad seeds, wrong shape, unsafe pickle, ..."""

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} ({fix})" if fix else what)


class UnsafePickleError(StyleGANError):
    """A pickle asked for a global that is not on the allow-list; nothing from it was executed."""
