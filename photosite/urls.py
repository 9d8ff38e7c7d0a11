from django.contrib import admin
from django.urls import include, path

from albums import api, health

admin.site.site_header = admin.site.site_title = "photosite"
admin.site.index_title = "Albums, sync runs and photos"
admin.site.site_url = "/"  # "View site": the index of public albums (albums.site)

admin.autodiscover()  # see INSTALLED_APPS: the admin is loaded here, for the web only

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", health.health, name="api-health"),
    path("api/health/live/", health.live, name="api-health-live"),
    path("api/sync/", api.sync_all, name="api-sync"),
    # The replaced system's scripts post to /api/sync: a redirect would lose the body.
    path("api/sync", api.sync_all),
    path("api/albums/<str:slug>/sync/", api.sync_one, name="api-album-sync"),
    path("api/albums/<str:slug>/restore/", api.restore_one, name="api-album-restore"),
    path("api/sync-runs/<int:run_id>/", api.run_detail, name="api-sync-run"),
    path("", include("albums.site.urls")),
]
