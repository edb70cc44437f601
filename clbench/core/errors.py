"""Errors the command line reports in one line: bad input (exit code 2) and diverged runs."""


class UserError(Exception):
    """Bad input from the user: unknown name, missing data, invalid option."""


class RunDiverged(Exception):
    """The run stopped on a non-finite loss (status ``diverged``); exit code 1."""
