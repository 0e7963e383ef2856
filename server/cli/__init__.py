"""The ``tidings`` command."""

from tidings.cli.main import main

__all__ = ["main"]
