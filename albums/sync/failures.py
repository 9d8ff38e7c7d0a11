"""The files a run could not handle, and the one rule for when an error stops the run."""

import logging

from ..exceptions import SyncError
from ..storage import classify_storage_error
from .result import FileFailure
from .scan import printable


class Failures:
    """One entry per file the run went on without, in the order they happened."""

    def __init__(self, *, album_name: str, log: logging.Logger | logging.LoggerAdapter):
        self.album_name = album_name
        self.log = log
        self.items: list[FileFailure] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(self, path: str, error: str) -> None:
        path = printable(path)
        self.log.warning("Failed: %s: %s", path, error)
        self.items.append(FileFailure(path, error))

    def judge(self, path: str, exc: Exception, *, where: str) -> None:
        """Record `exc` as the failure of `path` and go on, or raise the error that stops
        the run (see albums.storage.errors): the one place where that is decided. `where`
        is the storage, as messages name it."""
        if isinstance(exc, SyncError):
            raise exc
        problem = classify_storage_error(exc)
        if problem.stops_run:
            raise problem.run_error(album=self.album_name, where=where) from exc
        self.add(path, problem.cause)
