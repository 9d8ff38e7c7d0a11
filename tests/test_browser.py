"""One real browser: log in to the admin, click "Sync album", see the run finish.

Playwright (from pip) drives Debian's Chromium; no browser is downloaded. Screenshots of
the album and run pages are left in the test's tmp_path for a person to look at.
"""

from tests.browser import NEEDS_CHROMIUM
from tests.conftest import PASSWORD

pytestmark = NEEDS_CHROMIUM


def test_log_in_sync_an_album_and_see_the_result(
    transactional_db, live_server, album, local_bucket, syncer, browser_page, tmp_path, monkeypatch
):
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are
    # plain blocking calls made between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    page = browser_page
    change_page = f"{live_server.url}/admin/albums/album/{album.pk}/change/"

    page.goto(f"{live_server.url}/admin/login/?next=/admin/albums/album/{album.pk}/change/")
    page.fill("#id_username", syncer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(change_page)
    page.click("button:has-text('Sync album')")
    page.wait_for_url(change_page)

    message = page.locator("ul.messagelist li").first
    assert "Sync of “Summer 2024” queued as run #" in message.inner_text()
    page.screenshot(path=tmp_path / "album.png", full_page=True)
    message.locator("a").click()
    page.wait_for_selector("text=Succeeded")
    assert "3 / 3 files" in page.content()
    page.screenshot(path=tmp_path / "run.png", full_page=True)

    run = album.sync_runs.get()
    assert (run.status, run.uploaded, run.trigger) == ("success", 3, "admin")
    assert len(list(local_bucket.rglob("*.jpg"))) == 3


def test_a_running_run_updates_while_you_watch(
    transactional_db, live_server, album, syncer, browser_page, tmp_path, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    run = album.sync_runs.create(trigger="admin", status="running", files_done=1, files_total=3)
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/albums/syncrun/{run.pk}/change/")
    page.fill("#id_username", syncer.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#run-progress-text:has-text('1 / 3 files')")
    page.screenshot(path=tmp_path / "running.png", full_page=True)

    type(run).objects.filter(pk=run.pk).update(files_done=2)
    page.wait_for_selector("#run-progress-text:has-text('2 / 3 files')")
    type(run).objects.filter(pk=run.pk).update(files_done=3, status="success", uploaded=3)
    page.wait_for_selector("text=Succeeded")  # the page reloads once the run has ended
    assert page.locator("#run-progress-bar").count() == 0
