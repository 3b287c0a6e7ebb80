"""Errors a user can act on: the CLI prints them as one line, never a traceback.

The classes live in `stimuli.errors` (the bottom of the import flow stimuli -> interp -> viz)."""

from stimuli.errors import ChromaError, UsageError

__all__ = ["ChromaError", "UsageError"]
