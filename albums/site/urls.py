from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="site-index"),
    path("a/<str:slug>/", views.album, name="site-album"),
    path("a/<str:slug>/p/<int:photo_id>/", views.photo, name="site-photo"),
    path("s/<str:token>/", views.share, name="site-share"),
    path("s/<str:token>/p/<int:photo_id>/", views.share_photo, name="site-share-photo"),
    path(
        "s/<str:token>/p/<int:photo_id>/original/",
        views.share_download,
        name="site-share-download",
    ),
    path("media/<path:key>", views.media, name="site-media"),
]
