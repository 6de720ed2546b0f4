"""Fixtures the hostile tests share with the other suites."""

from tests.formats.test_cache import server  # noqa: F401 - the loopback HTTP server (cache under tmp_path/cache)
