from django.contrib import admin
from django.urls import path

from albums import api

admin.autodiscover()  # see INSTALLED_APPS: the admin is loaded here, for the web only

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/sync/", api.sync_all, name="api-sync"),
    # The replaced system's scripts post to /api/sync: a redirect would lose the body.
    path("api/sync", api.sync_all),
    path("api/albums/<str:slug>/sync/", api.sync_one, name="api-album-sync"),
    path("api/albums/<str:slug>/restore/", api.restore_one, name="api-album-restore"),
    path("api/sync-runs/<int:run_id>/", api.run_detail, name="api-sync-run"),
]
