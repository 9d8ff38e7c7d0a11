"""The files a run could not handle, and the one rule for when an error stops the run."""

import logging

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import SuspiciousFileOperation

from ...exceptions import SyncError
from ...storage import ProblemKind, StorageProblem, classify_storage_error
from ..bucket.transfer import FileChanged
from ..library.scan import printable
from ..outcome.result import FileFailure

# What the work on a file in a sync may raise that the run understands: that file's failure,
# or (a StorageError, or a backend error that says so) the end of the run; see
# Failures.judge. Anything else is a bug and stops the run as an unexpected error.
FILE_ERRORS = (OSError, ClientError, BotoCoreError, FileChanged, SuspiciousFileOperation, SyncError)

# Requests in a row that got no answer, with nothing heard from the endpoint between them,
# after which the endpoint as a whole is taken to be down (issue #12).
UNANSWERED_IN_A_ROW = 3


class Failures:
    """One entry per file the run went on without, in the order they happened."""

    def __init__(self, *, album_name: str, log: logging.Logger | logging.LoggerAdapter):
        self.album_name = album_name
        self.log = log
        self.items: list[FileFailure] = []
        self._unanswered = 0  # requests in a row that got no answer
        self._answers = 0  # how many the endpoint had answered by the last of them

    def __len__(self) -> int:
        return len(self.items)

    def add(self, path: str, error: str) -> None:
        path = printable(path)
        self.log.warning("Failed: %s: %s", path, error)
        self.items.append(FileFailure(path, error))

    def judge(self, path: str, exc: Exception, bucket) -> None:
        """Record `exc` as the failure of `path` and go on, or raise the error that stops
        the run: the one place where that is decided. `bucket` (the run's BucketPool) says
        where the photos go, as messages name it, and what the run has heard from it.

        What the error means comes from albums.storage.errors. A request that got no answer
        (refused, reset, timed out) is that file's failure while the endpoint answers other
        requests; the run stops when the endpoint as a whole has stopped answering: nothing
        at all was heard from it for a while (`silent`, albums.storage.watch), or it has
        answered nothing in this run yet, or UNANSWERED_IN_A_ROW requests in a row got no
        answer with no other request answered while they waited or between them.
        """
        self.judge_each([path], exc, bucket)

    def judge_each(self, paths: list[str], exc: Exception, bucket) -> None:
        """`exc`, the error of one request made for several files (a batch of deletes),
        judged once as `judge` does, and recorded as the failure of each of `paths`: a
        request that got no answer counts as one, however many keys it carried."""
        if isinstance(exc, SyncError):
            raise exc
        problem = classify_storage_error(exc)
        if problem.stops_run or self._endpoint_down(problem, bucket):
            raise problem.run_error(album=self.album_name, where=bucket.where) from exc
        for path in paths:
            self.add(path, problem.cause)

    def _endpoint_down(self, problem: StorageProblem, bucket) -> bool:
        if problem.kind is not ProblemKind.UNREACHABLE:
            return False
        endpoint = bucket.endpoint  # shared by the process's runs: counted since this one began
        if problem.silent or endpoint.answers == bucket.answers_at_start:
            return True
        if problem.answered_meanwhile or endpoint.answers != self._answers:
            self._unanswered, self._answers = 0, endpoint.answers
        if problem.answered_meanwhile:
            return False
        self._unanswered += 1
        return self._unanswered >= UNANSWERED_IN_A_ROW
