"""User-facing errors: bad input or bad configuration, reported without a traceback.

Every error a user can cause by what they give (a file, a column, an override) is a
``CarestarError``. ``run.py`` prints its message and exits with status 2 before any
sampling starts. Programming errors stay ordinary exceptions with tracebacks. A run that
completes but fails its diagnostic gates is no error: it writes everything, marked failed,
and exits with status 3.
"""

from __future__ import annotations

from collections.abc import Sequence

# Exit statuses of ``python run.py`` (README "Exit status"): 0 success; 1 a sweep had failed
# jobs; 2 bad input or configuration; 3 the run completed but failed its diagnostic gates;
# 4 task=reproduce did not get the recorded result; 130 / 143 interrupted by SIGINT / SIGTERM.
EXIT_JOB_FAILED = 1  # a sweep: one of its jobs failed
EXIT_USER_ERROR = 2
EXIT_GATES_FAILED = 3
EXIT_NOT_REPRODUCED = 4


class CarestarError(Exception):
    """A mistake in what the user gave; the message says what and where."""


class ConfigError(CarestarError):
    """An invalid configuration value (unknown predictor, bad prior, ...)."""


class DataError(CarestarError):
    """Invalid data: names the file, column, offending rows and what was expected."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        column: str | None = None,
        rows: Sequence[int] | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.column = column
        self.rows = list(rows) if rows is not None else None
        self.expected = expected
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.column:
            where.append(f"column '{self.column}'")
        head = f"{', '.join(where)}: {self.problem}" if where else self.problem
        lines = [head]
        if self.rows:
            lines.append(f"  rows: {format_rows(self.rows)}")
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


def format_rows(rows: Sequence[int], limit: int = 10) -> str:
    """Rows as a user counts them in a CSV file: line numbers with the header as line 1."""
    shown = ", ".join(str(r) for r in rows[:limit])
    more = len(rows) - limit
    return f"{shown} (and {more} more; {len(rows)} in all)" if more > 0 else shown


def user_error(error: BaseException) -> CarestarError | None:
    """The ``CarestarError`` behind ``error``, or None for a programming error.

    Hydra's ``instantiate`` wraps what a ``_target_`` raises (a bad data file, a bad model
    setting) in its own exception; a required setting left as ``???`` (``data=study``
    without ``data.dir``) is a user error too.
    """
    from omegaconf.errors import MissingMandatoryValue

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, CarestarError):
            return error
        if isinstance(error, MissingMandatoryValue):
            return missing_setting(str(error.full_key))
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def missing_setting(key: str) -> ConfigError:
    """``data.dir`` is required by data=study: say so, and how to set it."""
    from hydra.core.hydra_config import HydraConfig

    group = key.split(".")[0]
    choice = HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None
    if choice:
        return ConfigError(
            f"{group}={choice} needs {key}: add {key}=... to the command line "
            f"(see conf/{group}/{choice}.yaml)"
        )
    return ConfigError(f"{key} must be set: add {key}=... to the command line")
