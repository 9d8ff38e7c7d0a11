"""The time a background task gives its sync, so that the task timeout never strikes one that
is still making progress (issue 28).

django-q2 stops a task after Q_TIMEOUT: a SIGALRM in the worker's main thread, then the
cluster's guard kills the worker three seconds later. A sync of a large library may need
longer than any timeout. So a task's sync stops itself once its budget (below Q_TIMEOUT: see
albums.conf.task_budget_seconds) is spent, as it stops for Ctrl-C: no new photo is started,
the uploads in flight finish and are recorded, and the pass ends there (nothing after the
point it reached is judged, so no photo it did not reach is taken as gone). Its caller then
queues the rest as a run of its own (albums.sync.usecases.continued).
"""

from time import monotonic

from ... import conf
from ...exceptions import TimeBudgetSpent

BUDGET_SPENT = "The task's time budget of {seconds} is spent."


class TimeBudget:
    """`seconds` from now, on the monotonic clock. Checking it costs no query and no
    request, so the pass checks it between every two photos."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._ends = monotonic() + seconds

    @classmethod
    def for_task(cls) -> "TimeBudget | None":
        """The budget of a task starting now (None where tasks have no timeout)."""
        seconds = conf.task_budget_seconds()
        return None if seconds is None else cls(seconds)

    def spent(self) -> bool:
        return monotonic() >= self._ends

    def check(self) -> None:
        """Raise TimeBudgetSpent once the budget is spent."""
        if self.spent():
            raise TimeBudgetSpent(BUDGET_SPENT.format(seconds=describe_seconds(self.seconds)))


def describe_seconds(seconds: float) -> str:
    """A duration for messages: '4 h 30 min', '12 min', '3.5 s'."""
    if seconds < 60:
        return f"{seconds:g} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
