"""The sync service: every entry point (admin, command, tasks, API) calls these."""

from .discover import discover_albums
from .queue import queue_scheduled_syncs, queue_sync, queue_syncs, worker_seen
from .result import FileFailure, RestoreResult, SyncResult, VerifyResult
from .runs import run_as_dict
from .service import (
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
from .tally import ProgressCallback

__all__ = [
    "INTERRUPTED",
    "AlbumOutcome",
    "FileFailure",
    "ProgressCallback",
    "RestoreResult",
    "SyncResult",
    "VerifyResult",
    "discover_albums",
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
