"""`manage.py demo`: the sample album, public, so that the site shows it once synced."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from albums.models import Album, Visibility
from albums.sync import sync_albums

pytestmark = pytest.mark.django_db


def test_the_demo_makes_a_public_sample_album_the_site_shows(photos_root, local_bucket, settings):
    settings.ALBUMS_RENDITIONS = True

    call_command("demo", stdout=StringIO())
    list(sync_albums(Album.objects.all()))

    album = Album.objects.get()
    assert (album.name, album.visibility) == ("Sample Album", Visibility.PUBLIC)
    page = Client().get(album.get_absolute_url())
    assert page.content.decode().count('class="tile"') == 12
    assert "Sample Album" in Client().get("/").content.decode()
