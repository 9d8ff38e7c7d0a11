"""The sync service: every entry point (admin, command, tasks, API) calls these."""

from .discover import discover_albums
from .engine import ProgressCallback, sync_album
from .queue import queue_sync, worker_seen
from .result import FileFailure, SyncResult

__all__ = [
    "FileFailure",
    "ProgressCallback",
    "SyncResult",
    "discover_albums",
    "queue_sync",
    "sync_album",
    "worker_seen",
]
