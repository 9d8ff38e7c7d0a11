"""Errors that stop a sync run.

A problem with one file never raises: it becomes a failure entry in the run's result and the
run goes on. What is raised here stops the run, because going on could not succeed (the
bucket is unreachable or refuses us) or would be dangerous (the album folder is gone).
Messages name the album and the cause, never a credential.
"""


class SyncError(Exception):
    """A sync run could not start or had to stop."""


class AlbumsNotFound(SyncError):
    """The albums asked for do not exist (or there is no album at all)."""


class AlbumFolderMissing(SyncError):
    """The album's folder does not exist or is not a folder (perhaps a disk is not mounted)."""


class AlbumFolderEmpty(SyncError):
    """The folder holds no photos while the album has some: refuse to treat all as deleted."""


class AlbumFolderUnsafe(SyncError):
    """The album's folder resolves outside PHOTOS_ROOT."""


class ExclusionsInvalid(SyncError):
    """The album's .photosite-ignore cannot be used (a malformed pattern, not text)."""


class TooManyDeletions(SyncError):
    """Pruning would delete more objects than the run's limit allows."""


class SyncAlreadyRunning(SyncError):
    """Another sync of the same album holds its lease."""


class SyncLeaseLost(SyncError):
    """This run's lease expired and another run took the album over."""


class TimeBudgetSpent(SyncError):
    """A background run spent the time its task gives it (albums.conf.task_budget_seconds):
    it stops cleanly, what it did recorded, and the rest continues in another run."""


class QueueUnavailable(SyncError):
    """The task queue (the django-q2 broker) could not be reached: nothing was queued."""


class StorageError(SyncError):
    """The bucket cannot be used: unreachable, refused credentials, missing, misconfigured."""


class StorageUnreachable(StorageError):
    """The endpoint did not answer (connection refused, DNS, timeouts after retries)."""


class StorageAccessDenied(StorageError):
    """The credentials are wrong or lack a permission the sync needs."""


class BucketMissing(StorageError):
    """The bucket does not exist."""
