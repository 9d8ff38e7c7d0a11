"""The site in a real browser (Debian's Chromium, as tests/test_browser.py): a public album
scrolled until more photos load, its lightbox stepped with the arrow keys and closed with
Esc; a share link with a password, wrong then right; an expired link; a private album.
Screenshots are left in the test's tmp_path for a person to look at."""

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from albums.models import Photo, ShareLink, Visibility
from albums.site.gallery import PAGE
from albums.sync import sync_album
from tests.browser import NEEDS_CHROMIUM
from tests.conftest import PASSWORD

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def public_album(transactional_db, album, local_bucket, settings, monkeypatch):
    """The album with its renditions in the local-folder bucket (served by the site), and
    more photos than a page holds (records of the same picture), public."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.ALBUMS_RENDITIONS = True
    sync_album(album=album)
    model = Photo.objects.get(path="photo1.jpg")
    Photo.objects.bulk_create(
        Photo(album=album, path=f"z/{n:04}.jpg", key=f"albums/x/{n}", size=1, mtime_ns=1,
              md5=model.md5, renditions=model.renditions, width=48 + n % 30, height=32,
              verified_at=timezone.now())
        for n in range(PAGE + 20)
    )  # fmt: skip
    album.visibility = Visibility.PUBLIC
    album.save()
    return album


def test_scroll_a_public_album_and_step_through_its_lightbox(
    live_server, public_album, browser_page, tmp_path
):
    page = browser_page
    errors = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.goto(f"{live_server.url}/")
    page.click("text=Summer 2024")

    tiles = page.locator("a.tile")
    assert tiles.count() == PAGE
    page.screenshot(path=tmp_path / "album.png")
    page.mouse.wheel(0, 20_000)
    tiles.nth(PAGE).wait_for()  # the next page came as the visitor scrolled
    tiles.nth(PAGE + 22).wait_for()
    assert tiles.count() == PAGE + 23
    # (Playwright's evaluate, not wait_for_function: the page's policy forbids eval.)
    first_image = tiles.nth(0).locator("img")
    first_image.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    assert first_image.evaluate("img => img.complete && img.naturalWidth > 0")

    tiles.nth(0).click()
    box = page.locator(".lightbox")
    box.wait_for(state="visible")
    first = page.locator(".lightbox img").get_attribute("src")
    page.keyboard.press("ArrowRight")
    assert page.locator(".lightbox .caption").inner_text() == "1 Jul 2024, 12:00"
    page.screenshot(path=tmp_path / "lightbox.png")
    page.keyboard.press("ArrowLeft")
    assert page.locator(".lightbox img").get_attribute("src") == first
    page.keyboard.press("Escape")
    box.wait_for(state="hidden")
    assert errors == []  # the policy blocked nothing the page needs


def test_a_share_link_with_a_password_wrong_then_right(
    live_server, public_album, browser_page, tmp_path
):
    public_album.visibility = Visibility.UNLISTED
    public_album.save()
    link = ShareLink.objects.create(album=public_album, password=make_password("sesame"))
    page = browser_page

    page.goto(f"{live_server.url}{link.get_absolute_url()}")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("text=That is not the password.")
    page.fill("input[name=password]", "sesame")
    page.click("button[type=submit]")
    page.wait_for_selector("a.tile")
    page.screenshot(path=tmp_path / "shared.png")
    assert page.locator("a.tile").count() == PAGE


def test_an_expired_link_and_a_private_album(
    live_server, public_album, viewer, browser_page, tmp_path
):
    link = ShareLink.objects.create(
        album=public_album, expires_at=timezone.now() - timedelta(days=1)
    )
    public_album.visibility = Visibility.PRIVATE
    public_album.save()
    page = browser_page

    gone = page.goto(f"{live_server.url}{link.get_absolute_url()}")
    assert gone.status == 410
    assert "This link has expired" in page.content()
    album_url = f"{live_server.url}/a/{public_album.slug}/"
    assert page.goto(album_url).status == 404

    page.goto(f"{live_server.url}/admin/login/?next=/a/{public_album.slug}/")
    page.fill("#id_username", viewer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(album_url)
    assert page.locator("a.tile").count() == PAGE
    page.screenshot(path=tmp_path / "staff.png")
