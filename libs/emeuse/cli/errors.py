"""The one error type the CLI shows: a single clear line, never a traceback."""


class CliError(Exception):
    """Something the user can fix; printed as `emeuse: error: <message>`, exit status 1."""
