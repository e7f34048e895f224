"""The one exception type the command line turns into a one-line message."""


class AlgmExportError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The CLI prints ``str(error)`` and exits with code 2; no traceback unless ``--verbose``.
    """
