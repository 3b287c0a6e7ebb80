"""Errors a user can act on, defined in the lowest layer so that stimuli can raise them without
importing interp; `interp.errors` re-exports them and the CLI prints them as one line."""


class ChromaError(Exception):
    """Something went wrong that the user can fix; exit code 1."""

    exit_code = 1


class UsageError(ChromaError):
    """Bad arguments or options; exit code 2."""

    exit_code = 2
