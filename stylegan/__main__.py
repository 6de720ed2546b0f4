"""``python -m stylegan``: the same as the ``stylegan`` command."""

from stylegan.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
