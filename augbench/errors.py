"""Errors that the CLI turns into exit status 2 with a clear message."""


class UsageError(Exception):
    """Bad input from the user: a flag, a value, a file or a field.

    The message must name what is wrong (the flag, file or field) and what
    would be accepted. The CLI prints it and exits with status 2.
    """


class DataError(UsageError):
    """A data set could not be found or read."""


class FieldError(UsageError):
    """Bad value of one run configuration field (``augbench.config.RunConfig``).

    ``field`` is the field's name, so that a caller that read the value from elsewhere (an experiment file's
    ``fixed.lr``, a protocol) can say where it came from without parsing the message.
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
