"""Errors the command line reports in one line with exit code 2 (bad input)."""


class UserError(Exception):
    """Bad input from the user: unknown name, missing data, invalid option."""
