"""The admin: album state at a glance, a sync in one click, runs and photos to inspect."""

from . import albums

__all__ = ["albums"]
