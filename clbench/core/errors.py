"""Errors the command line reports in one line: bad input (exit code 2), diverged runs
and runs stopped by a fault outside them (exit code 1)."""


class UserError(Exception):
    """Bad input from the user: unknown name, missing data, invalid option."""


class RunDiverged(Exception):
    """The run stopped on a non-finite loss (status ``diverged``); exit code 1."""


class RunStopped(Exception):
    """The run could not write its files (disk full, folder read-only); re-running the
    same command resumes it from its last checkpoint. Exit code 1."""
