"""The two kinds of error a user of the ``ganrepro`` command can meet, and their exit codes.

Any layer (config, sweep, store, report, bench) raises one of these with a message that fits on
one line, names the bad value or file, and says what is allowed or what to do; the command line
prints ``ganrepro: error: <message>`` and exits with the class's code. Nothing else reaches a
user as a traceback.
"""
from __future__ import annotations

EXIT_USAGE = 2
"""Bad input: an option's value, a path that cannot be used, a damaged store to repair."""

EXIT_ENVIRONMENT = 1
"""A fault of the environment: a full disk, a read-only folder, a vanished file."""


class UsageError(ValueError):
    """Bad input from the user (exit 2): the message names the value and what is allowed."""

    exit_code = EXIT_USAGE


class EnvironmentFault(RuntimeError):
    """The environment failed the command (exit 1): disk full, permission denied, I/O error."""

    exit_code = EXIT_ENVIRONMENT
