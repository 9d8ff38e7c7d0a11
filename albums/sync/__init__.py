"""The sync service: every entry point (admin, command, tasks, API) calls these."""

from .discover import discover_albums
from .engine import ProgressCallback, sync_album
from .result import FileFailure, SyncResult

__all__ = ["FileFailure", "ProgressCallback", "SyncResult", "discover_albums", "sync_album"]
