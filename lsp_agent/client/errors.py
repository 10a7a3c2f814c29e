"""What the command line exits with, and the one-line errors it prints instead of tracebacks.

The exit code says what happened, so that a script can tell a bad argument from a missing key
from a turn that failed half-way (README.md, "Exit codes", lists them for users).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the turn finished (stop reason end_turn)
    TURN_FAILED = 1  # the turn ended in an error: a model call failed after its retries, a bug
    USAGE = 2  # the command line or its input is wrong: fix the arguments and run again
    SETUP = 3  # the model cannot be used: no API key, endpoint unreachable, key refused,
    #            unknown model; fix the environment or --model and run again
    STOPPED = 4  # the agent stopped short: the round limit (max_turns) or the model refused
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


# How a turn's stop reason maps to the exit code (an error's kind may make it SETUP, below).
EXIT_FOR_STOP_REASON: dict[str, ExitCode] = {
    "end_turn": ExitCode.OK,
    "error": ExitCode.TURN_FAILED,
    "max_turns": ExitCode.STOPPED,
    "refusal": ExitCode.STOPPED,
    "cancelled": ExitCode.INTERRUPTED,
}

# Model failures that no retry fixes: the user must change the key, the endpoint or the model.
SETUP_ERROR_KINDS = frozenset({"auth", "not_found"})


class CliError(Exception):
    """A problem the user can fix: printed as one line (``lsp-agent: error: ...``), no
    traceback, and the process exits with ``code``."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE):
        super().__init__(message)
        self.code = code
