"""The sync service: every entry point (admin, command, tasks, API) calls these."""

from .discover import discover_albums
from .queue import queue_scheduled_syncs, queue_sync, queue_syncs, worker_seen
from .result import FileFailure, SyncResult
from .runs import run_as_dict
from .service import (
    INTERRUPTED,
    AlbumOutcome,
    run_queued_sync,
    select_albums,
    sync_album,
    sync_albums,
)
from .tally import ProgressCallback

__all__ = [
    "INTERRUPTED",
    "AlbumOutcome",
    "FileFailure",
    "ProgressCallback",
    "SyncResult",
    "discover_albums",
    "queue_scheduled_syncs",
    "queue_sync",
    "queue_syncs",
    "run_as_dict",
    "run_queued_sync",
    "select_albums",
    "sync_album",
    "sync_albums",
    "worker_seen",
]
