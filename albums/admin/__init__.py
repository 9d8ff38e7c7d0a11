"""The admin: album state at a glance, a sync in one click, runs and photos to inspect.

One module per ModelAdmin (albums, runs, photos, tokens); large_lists keeps their lists fast
at a million photos, display holds what several pages show alike. Custom views are
registered through get_urls(), wrapped by admin_site.admin_view (staff, CSRF, never-cache)
and check the model permission themselves; they queue work through albums.sync.queue_sync
and contain none of the sync itself.
"""

from . import albums, photos, runs, tokens

__all__ = ["albums", "photos", "runs", "tokens"]
