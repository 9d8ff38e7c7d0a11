"""The site: who sees which album, share links' rules, the headers, and pages whose cost does
not grow with the album (albums.site)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from albums.models import Album, Photo, ShareLink, Visibility
from albums.site import gallery
from albums.sync import sync_album
from tests.conftest import FAKE_SECRET, PASSWORD, write_photo

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def renditions(settings):
    settings.ALBUMS_RENDITIONS = True
    cache.clear()  # the throttle of wrong passwords, and signed URLs


@pytest.fixture
def shown(album, s3):
    """The album synced to a moto bucket, with its renditions, and public."""
    sync_album(album=album)
    album.visibility = Visibility.PUBLIC
    album.save()
    return album


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def share(album, **fields) -> ShareLink:
    return ShareLink.objects.create(album=album, **fields)


def images(response) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', response.content.decode())


def test_the_index_lists_public_albums_only_with_cover_count_and_dates(shown, photos_root):
    write_photo(photos_root / "Secret" / "a.jpg")
    secret = Album.objects.create(name="Secret", slug="secret", folder="Secret")
    sync_album(album=secret)

    page = Client().get("/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "Summer 2024" in text and "Secret" not in text
    assert "3 photos · Jul 2024" in text
    cover = Photo.objects.filter(album=shown).order_by("path").first()  # the first by path
    assert f"albums-renditions/{cover.md5[:2]}/{cover.md5}/400-q80-v1.webp" in images(page)[0]


def test_a_private_album_is_a_404_to_visitors_and_shows_to_staff(album, s3, viewer):
    sync_album(album=album)
    url = reverse("site-album", args=[album.slug])

    assert Client().get(url).status_code == 404
    staff = logged_in(viewer).get(url)
    assert staff.status_code == 200 and len(images(staff)) == 3
    album.visibility = Visibility.UNLISTED
    album.save()
    assert Client().get(url).status_code == 404  # only through a share link
    photo = Photo.objects.first()
    assert Client().get(reverse("site-photo", args=[album.slug, photo.pk])).status_code == 404


def test_pages_carry_a_policy_that_runs_no_inline_script(shown):
    page = Client().get(reverse("site-album", args=[shown.slug]))

    policy = page["Content-Security-Policy"]
    assert (
        "script-src 'self';" in policy
        and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert (
        "default-src 'none'" in policy
        and "img-src 'self' https://photosite-test.s3.amazonaws.com" in policy
    )
    assert "<script>" not in page.content.decode()  # only <script src=...>
    assert re.findall(r"<script[^>]*>", page.content.decode()) == [
        '<script src="/static/site/site.js" defer>'
    ]


def test_the_album_page_shows_a_justified_grid_from_the_recorded_sizes(shown):
    page = Client().get(reverse("site-album", args=[shown.slug]))

    text = page.content.decode()
    tiles = re.findall(
        r'<a class="tile"[^>]*style="flex-grow: (\d+); width: (\d+)px; aspect-ratio: 48 / 32"', text
    )
    assert tiles == [("330", "330")] * 3  # 48 x 32 photos at a 220 px row: 330 px wide
    assert text.count('loading="lazy"') == 3
    assert re.search(r'srcset="[^"]+ 48w, [^"]+ 48w"', text)  # never upscaled
    assert 'width="48" height="32"' in text  # no layout shift while it loads


def test_a_large_album_sends_a_page_of_photos_and_the_rest_as_the_visitor_scrolls(
    shown, monkeypatch
):
    photos = list(Photo.objects.all())
    more = [
        Photo(album=shown, path=f"z/{i:05}.jpg", key=f"k{i}", size=1, mtime_ns=1, md5=f"{i:032x}",
              renditions=photos[0].renditions, width=300, height=200, verified_at=timezone.now())
        for i in range(150)
    ]  # fmt: skip
    Photo.objects.bulk_create(more)
    url = reverse("site-album", args=[shown.slug])

    with CaptureQueriesContext(connection) as first:
        page = Client().get(url)
    text = page.content.decode()
    assert text.count('class="tile"') == gallery.PAGE
    after = re.search(r'<a class="more" href="([^"]+)" data-more>', text).group(1)
    fragment = Client().get(after, headers={"X-Photosite-Fragment": "1"})
    assert fragment.content.decode().count('class="tile"') == gallery.PAGE
    assert "<html" not in fragment.content.decode()
    # A page costs the same queries whatever the album's size.
    Photo.objects.filter(path__startswith="z/").delete()
    with CaptureQueriesContext(connection) as small:
        Client().get(url)
    assert len(first) == len(small) <= 4  # the album, its photos, its dates (and a session)


def test_a_share_link_shows_an_unlisted_album_and_counts_its_views(shown):
    shown.visibility = Visibility.UNLISTED
    shown.save()
    link = share(shown)

    page = Client().get(link.get_absolute_url())

    assert page.status_code == 200
    assert page["Referrer-Policy"] == "no-referrer"
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    assert len(images(page)) == 3
    link.refresh_from_db()
    assert link.view_count == 1 and link.last_used_at is not None
    assert len(link.token) >= 22  # 128 bits or more
    assert link.expires_at - timezone.now() > timedelta(days=29)


def test_a_wrong_token_is_a_404_and_an_expired_or_revoked_link_a_410(shown):
    expired = share(shown, expires_at=timezone.now() - timedelta(minutes=1))
    revoked = share(shown, revoked_at=timezone.now())
    private = share(Album.objects.create(name="P", slug="p", folder="P"))

    assert Client().get(reverse("site-share", args=["x" * 32])).status_code == 404
    for link in (expired, revoked):
        response = Client().get(link.get_absolute_url())
        assert response.status_code == 410
        assert "This link has expired" in response.content.decode()
        assert response["Referrer-Policy"] == "no-referrer"
    assert Client().get(private.get_absolute_url()).status_code == 404
    never = share(shown, expires_at=None)
    assert Client().get(never.get_absolute_url()).status_code == 200


def test_a_password_protected_link_throttles_wrong_guesses(shown):
    link = share(shown, password=make_password("open sesame"))
    client = Client()
    url = link.get_absolute_url()

    locked = client.get(url)
    assert locked.status_code == 200 and images(locked) == []
    assert "This album needs a password" in locked.content.decode()
    for _ in range(5):
        assert client.post(url, {"password": "wrong"}).status_code == 401
    assert client.post(url, {"password": "open sesame"}).status_code == 429  # even the right one
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post(url, {"password": "open sesame"}).status_code == 302
    assert len(images(other.get(url))) == 3
    photo = Photo.objects.first()
    assert Client().get(reverse("site-share-photo", args=[link.token, photo.pk])).status_code == 302


def test_a_link_hides_file_names_and_originals_unless_it_allows_them(shown):
    photo = Photo.objects.get(path="photo1.jpg")
    hidden = share(shown)
    open_link = share(shown, show_details=True, allow_download=True)

    page = Client().get(reverse("site-share-photo", args=[hidden.token, photo.pk])).content.decode()
    assert "photo1.jpg" not in page and photo.key not in page and "original" not in page.lower()
    download = reverse("site-share-download", args=[hidden.token, photo.pk])
    assert Client().get(download).status_code == 404

    page = (
        Client().get(reverse("site-share-photo", args=[open_link.token, photo.pk])).content.decode()
    )
    assert "photo1.jpg" in page and "Download the original" in page
    answer = Client().get(reverse("site-share-download", args=[open_link.token, photo.pk]))
    assert answer.status_code == 302
    assert "response-content-disposition=attachment" in answer["Location"]
    assert "X-Amz-Signature=" in answer["Location"]


def test_rendition_urls_are_stable_and_no_page_shows_a_secret(shown, settings):
    url = reverse("site-album", args=[shown.slug])

    first, second = images(Client().get(url)), images(Client().get(url))

    assert first == second  # the same signed URL: browsers and proxies cache the image
    for page in (Client().get("/"), Client().get(url)):
        text = page.content.decode()
        assert FAKE_SECRET not in text and settings.SECRET_KEY not in text
        assert "albums/summer-2024/" not in text  # no original's key


def test_the_photo_page_is_a_deep_link_with_its_neighbours(shown):
    first, second, third = Photo.objects.order_by("path")

    page = Client().get(reverse("site-photo", args=[shown.slug, second.pk])).content.decode()

    assert f'href="{reverse("site-photo", args=[shown.slug, first.pk])}" rel="prev"' in page
    assert f'href="{reverse("site-photo", args=[shown.slug, third.pk])}" rel="next"' in page
    assert second.md5 in page and "2048-q80-v1.webp" in page
    assert "1 July 2024, 12:00" in page  # when it was taken (path order: photo1 is second)


def test_a_local_folder_bucket_serves_renditions_and_nothing_else(album, local_bucket):
    sync_album(album=album)
    album.visibility = Visibility.PUBLIC
    album.save()
    page = Client().get(reverse("site-album", args=[album.slug]))
    src = images(page)[0]

    served = Client().get(src)

    assert served.status_code == 200 and served["Content-Type"] == "image/webp"
    assert served["Cache-Control"] == "public, max-age=31536000, immutable"
    photo = Photo.objects.first()
    assert Client().get(reverse("site-media", args=[photo.key])).status_code == 404
    assert Client().get("/media/albums-renditions/../albums/x.jpg").status_code == 404


def test_the_admin_manages_share_links_inline_and_links_to_the_site(
    shown, syncer, django_user_model
):
    admin = django_user_model.objects.create_superuser("boss", password=PASSWORD)
    client = logged_in(admin)
    change = reverse("admin:albums_album_change", args=[shown.pk])
    form = client.get(change)
    assert 'href="/"' in form.content.decode()  # "View site"
    data = {
        "name": shown.name, "slug": shown.slug, "folder": shown.folder, "visibility": "unlisted",
        "sync_on_schedule": "on",
        "share_links-TOTAL_FORMS": "1", "share_links-INITIAL_FORMS": "0",
        "share_links-MIN_NUM_FORMS": "0", "share_links-MAX_NUM_FORMS": "1000",
        "share_links-0-label": "Grandma", "share_links-0-expires_at_0": "2099-01-01",
        "share_links-0-expires_at_1": "12:00:00", "share_links-0-new_password": "knock knock",
    }  # fmt: skip

    response = client.post(change, data)

    assert response.status_code == 302, response.content.decode()[-2000:]
    link = ShareLink.objects.get()
    assert link.label == "Grandma" and link.password.startswith("md5$")  # the tests' hasher
    assert "knock knock" not in link.password
    assert Album.objects.get().visibility == Visibility.UNLISTED
    page = client.get(change).content.decode()
    assert link.token in page and "knock knock" not in page
    assert (
        client.get(reverse("admin:albums_album_changelist") + "?visibility=unlisted").status_code
        == 200
    )
