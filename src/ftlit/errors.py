"""The exceptions ftlit raises for problems a user can fix (bad input, missing files, offline) and for a stop."""


class FtlitError(Exception):
    """A user-facing error: the CLI prints its message as one paragraph and exits with ``exit_code``."""

    exit_code = 2


class TrainingInterrupted(FtlitError):
    """A command (training, or any other) stopped by SIGTERM or SIGINT: its message says what was kept."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # the shell's convention for "ended by this signal": 143, 130


class RequestError(FtlitError):
    """A prediction request (``ftlit serve``) that cannot be answered: ``field`` names what is wrong with it."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field, self.detail = field, detail
