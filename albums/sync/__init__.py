"""The sync service: every entry point (admin, command, tasks, API) calls these."""

from .library.discover import discover_albums
from .outcome.result import FileFailure, RestoreResult, SyncResult, VerifyResult
from .outcome.tally import ProgressCallback
from .records.runs import follow_note, run_as_dict
from .usecases.queue import queue_scheduled_syncs, queue_sync, queue_syncs, worker_seen
from .usecases.service import (
    INTERRUPTED,
    AlbumOutcome,
    restore_album,
    restore_from_bucket,
    run_queued_sync,
    run_queued_syncs,
    select_albums,
    sync_album,
    sync_albums,
    verify_album,
)

__all__ = [
    "INTERRUPTED",
    "AlbumOutcome",
    "FileFailure",
    "ProgressCallback",
    "RestoreResult",
    "SyncResult",
    "VerifyResult",
    "discover_albums",
    "follow_note",
    "queue_scheduled_syncs",
    "queue_sync",
    "queue_syncs",
    "restore_album",
    "restore_from_bucket",
    "run_as_dict",
    "run_queued_sync",
    "run_queued_syncs",
    "select_albums",
    "sync_album",
    "sync_albums",
    "verify_album",
    "worker_seen",
]
