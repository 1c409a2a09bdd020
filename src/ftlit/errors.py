"""The one exception ftlit raises for problems a user can fix (bad input, missing files, offline)."""


class FtlitError(Exception):
    """A user-facing error: the CLI prints its message as one paragraph and exits with code 2."""
