"""Errors a user can act on: the CLI prints them as one line, never a traceback."""


class ChromaError(Exception):
    """Something went wrong that the user can fix; exit code 1."""

    exit_code = 1


class UsageError(ChromaError):
    """Bad arguments or options; exit code 2."""

    exit_code = 2
