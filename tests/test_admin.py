"""The admin door, through the Django test client: buttons, views, action, run and photo pages."""

import re
import shutil

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django_q.conf import Conf

from albums.admin import albums as albums_admin
from albums.exceptions import StorageAccessDenied
from albums.models import Album, Photo, SyncRun, SyncStatus
from albums.sync import sync_album
from albums.sync.usecases.continued import CONTINUED
from tests.conftest import PASSWORD, Appender, closed_port, s3_error, write_photo


def change_url(album):
    return reverse("admin:albums_album_change", args=[album.pk])


def sync_url(album):
    return reverse("admin:albums_album_sync", args=[album.pk])


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def synced(album, local_bucket):
    """The album after one real sync: photos recorded, files in the local bucket."""
    sync_album(album=album)
    return album


def test_the_sync_buttons_are_shown_to_users_who_may_sync(album, syncer):
    page = logged_in(syncer).get(change_url(album)).content.decode()

    assert page.count(f'action="{sync_url(album)}"') == 3
    assert ">Sync album</button>" in page
    assert ">Dry run</button>" in page
    assert ">Verify album</button>" in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_the_sync_buttons_are_hidden_from_staff_who_may_not(album, viewer):
    response = logged_in(viewer).get(change_url(album))

    assert response.status_code == 200
    assert sync_url(album) not in response.content.decode()


def test_sync_album_queues_a_run_that_completes(album, local_bucket, syncer, on_commit):
    with on_commit():
        response = logged_in(syncer).post(sync_url(album))

    assert response.status_code == 302
    assert response["Location"] == change_url(album)
    run = SyncRun.objects.get()
    assert (run.status, run.trigger, run.dry_run) == (SyncStatus.SUCCESS, "admin", False)
    assert run.uploaded == 3
    link = f'<a href="{reverse("admin:albums_syncrun_change", args=[run.pk])}">run #{run.pk}</a>'
    assert texts(response) == [albums_admin.SYNC_QUEUED.format(album=album.name, run=link)]


def test_dry_run_button_queues_a_dry_run(album, local_bucket, syncer, on_commit):
    with on_commit():
        response = logged_in(syncer).post(sync_url(album), {"dry_run": "1"})

    run = SyncRun.objects.get()
    assert (run.status, run.dry_run, run.uploaded) == (SyncStatus.SUCCESS, True, 3)
    assert texts(response)[0].startswith(f"Dry run of “{album.name}” queued as")
    assert not Photo.objects.exists()


def test_get_does_not_sync(album, syncer):
    response = logged_in(syncer).get(sync_url(album))

    assert response.status_code == 405
    assert not SyncRun.objects.exists()


def test_staff_without_the_permission_get_403(album, viewer):
    response = logged_in(viewer).post(sync_url(album))

    assert response.status_code == 403
    assert not SyncRun.objects.exists()


def test_non_staff_are_sent_to_the_login_page(album, django_user_model):
    user = django_user_model.objects.create_user("visitor", password=PASSWORD)

    for client in (Client(), logged_in(user)):
        response = client.post(sync_url(album))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert not SyncRun.objects.exists()


def test_csrf_is_enforced(album, local_bucket, syncer, on_commit):
    client = logged_in(syncer, enforce_csrf_checks=True)

    assert client.post(sync_url(album)).status_code == 403
    assert not SyncRun.objects.exists()

    page = client.get(change_url(album)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    with on_commit():
        response = client.post(sync_url(album), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert SyncRun.objects.get().status == SyncStatus.SUCCESS


def test_an_unknown_album_redirects_with_a_message(db, syncer):
    response = logged_in(syncer).post(reverse("admin:albums_album_sync", args=[999]))

    assert response.status_code == 302
    # Django's own words, with its curly quotes.
    assert texts(response) == [
        "album with ID \u201c999\u201d doesn\u2019t exist. Perhaps it was deleted?"
    ]
    assert not SyncRun.objects.exists()


def test_no_worker_is_said_and_the_run_waits(album, syncer, monkeypatch, on_commit):
    monkeypatch.setattr(Conf, "SYNC", False)  # a real broker, and no cluster running

    with on_commit():
        response = logged_in(syncer).post(sync_url(album))

    assert SyncRun.objects.get().status == SyncStatus.QUEUED
    assert texts(response)[1] == albums_admin.NO_WORKER


@pytest.mark.django_db(transaction=True)  # autocommit, as a request runs: enqueued at once
def test_a_task_queue_that_cannot_be_reached_is_said_and_no_run_waits(album, syncer, monkeypatch):
    """Redis down: the button says so, and leaves no "queued" run that nothing will run."""
    port = closed_port()
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{port}/0")

    response = logged_in(syncer).post(sync_url(album))

    assert response.status_code == 302
    [message] = texts(response)
    assert message.startswith(f"The task queue (Redis at 127.0.0.1:{port}) cannot be reached:")
    assert message.endswith("start Redis or fix REDIS_URL, then try again.")
    assert SyncRun.objects.get().status == SyncStatus.FAILED


def test_a_running_sync_is_shown_rather_than_queued_again(album, syncer, monkeypatch):
    from albums.sync.records.lease import AlbumLease

    running = SyncRun.objects.create(album=album, trigger="command", status=SyncStatus.RUNNING)
    lease = AlbumLease(album)
    lease.acquire()
    try:
        response = logged_in(syncer).post(sync_url(album))
    finally:
        lease.release()

    assert SyncRun.objects.get() == running
    assert texts(response)[0].startswith(f"“{album.name}” is being synced right now")


def test_the_bulk_action_queues_every_selected_album(
    album, photos_root, local_bucket, syncer, on_commit
):
    write_photo(photos_root / "Winter" / "a.jpg")
    winter = Album.objects.create(name="Winter", slug="winter", folder="Winter")
    data = {"action": "sync_selected", "_selected_action": [album.pk, winter.pk]}

    with on_commit():
        response = logged_in(syncer).post(reverse("admin:albums_album_changelist"), data)

    assert response.status_code == 302
    runs = SyncRun.objects.order_by("pk")
    assert [run.status for run in runs] == [SyncStatus.SUCCESS] * 2
    assert texts(response)[0].startswith("Queued syncs of 2 albums: <a href=")


def test_the_bulk_action_needs_the_permission(album, viewer):
    changelist = reverse("admin:albums_album_changelist")
    client = logged_in(viewer)

    assert "sync_selected" not in client.get(changelist).content.decode()
    client.post(changelist, {"action": "sync_selected", "_selected_action": [album.pk]})
    assert not SyncRun.objects.exists()


def test_the_album_list_shows_state_at_a_glance(synced, syncer):
    page = logged_in(syncer).get(reverse("admin:albums_album_changelist")).content.decode()

    run = SyncRun.objects.get()
    assert "Summer 2024" in page
    assert f'?album__id__exact={synced.pk}">3</a>' in page
    assert reverse("admin:albums_syncrun_change", args=[run.pk]) in page
    assert "Succeeded" in page and "3 sent, 0 failed" in page
    for query in ("?sync_state=never", "?sync_state=problem", "?q=summer"):
        response = logged_in(syncer).get(reverse("admin:albums_album_changelist") + query)
        assert response.status_code == 200


def test_the_run_page_shows_counts_and_file_errors(album, local_bucket, syncer):
    write_photo(album.path / "bad\\name.jpg")
    sync_album(album=album)
    run = SyncRun.objects.get()

    page = (
        logged_in(syncer)
        .get(reverse("admin:albums_syncrun_change", args=[run.pk]))
        .content.decode()
    )

    assert "Partly failed" in page
    assert "bad\\name.jpg" in page and "backslash" in page
    assert "4 / 4 files" in page  # the failed photo counts as done
    assert "run-progress-bar" not in page  # finished: nothing to poll
    listing = logged_in(syncer).get(reverse("admin:albums_syncrun_changelist")).content.decode()
    assert f"Sync of Summer 2024 #{run.pk}" in listing


def test_the_run_page_shows_every_count_including_photos_left_for_the_next_run(album, syncer):
    run = SyncRun.objects.create(
        album=album,
        trigger="admin",
        status="success",
        scanned=3,
        uploaded=2,
        deferred=1,
        untracked_pruned=4,
    )

    page = (
        logged_in(syncer)
        .get(reverse("admin:albums_syncrun_change", args=[run.pk]))
        .content.decode()
    )

    shown = dict(
        re.findall(r"<label>([^<]+):</label>\s*<div class=\"readonly\">([^<]*)</div>", page)
    )
    assert (shown["Left for next run"], shown["Untracked removed"]) == ("1", "4")
    assert (shown["Uploaded"], shown["Photos found"], shown["Failed"]) == ("2", "3", "0")


def test_a_running_run_shows_and_polls_its_progress(album, syncer):
    run = SyncRun.objects.create(
        album=album, trigger="admin", status=SyncStatus.RUNNING, files_done=3, files_total=10
    )
    client = logged_in(syncer)

    page = client.get(reverse("admin:albums_syncrun_change", args=[run.pk])).content.decode()
    progress = client.get(reverse("admin:albums_syncrun_progress", args=[run.pk])).json()

    assert '<progress id="run-progress-bar" value="3" max="10">' in page
    assert reverse("admin:albums_syncrun_progress", args=[run.pk]) in page
    assert (progress["files_done"], progress["files_total"], progress["active"]) == (3, 10, True)


def test_a_long_sync_says_which_run_goes_on_and_which_it_picks_up_from(album, syncer):
    continued = SyncRun.objects.create(
        album=album, trigger="schedule", status=SyncStatus.CONTINUED, uploaded=40
    )
    following = SyncRun.objects.create(
        album=album, trigger="schedule", status=SyncStatus.SUCCESS, follows=continued
    )
    continued.message = CONTINUED.format(seconds="4 h 30 min", run=following.pk)
    continued.save()
    interrupted = SyncRun.objects.create(album=album, trigger="admin", status=SyncStatus.FAILED)
    resumed = SyncRun.objects.create(
        album=album, trigger="admin", status=SyncStatus.RUNNING, follows=interrupted,
        resumed_photos=1,
    )  # fmt: skip
    client = logged_in(syncer)

    def page(name, pk):
        return client.get(reverse(f"admin:albums_{name}_change", args=[pk])).content.decode()

    continued_page = page("syncrun", continued.pk)
    assert f"the rest continues in run #{following.pk}" in continued_page
    assert "Continued in" in continued_page and "icon-clock.svg" in continued_page
    assert f"Continues run #{continued.pk}, which stopped after its time budget." in page(
        "syncrun", following.pk
    )
    resumed_note = (
        f"Resumed after run #{interrupted.pk}, which was interrupted: 1 photo it had sent and "
        "recorded was not sent again."
    )
    assert resumed_note in page("syncrun", resumed.pk)
    album_page = page("album", album.pk)
    assert resumed_note in album_page and "Continued in another run" in album_page
    progress = client.get(reverse("admin:albums_syncrun_progress", args=[resumed.pk])).json()
    assert (progress["follows"], progress["resumed_photos"]) == (interrupted.pk, 1)
    assert progress["note"] == resumed_note


def test_runs_are_read_only(album, syncer, admin_client):
    run = SyncRun.objects.create(album=album, trigger="admin", status=SyncStatus.SUCCESS)

    page = admin_client.get(reverse("admin:albums_syncrun_change", args=[run.pk])).content.decode()

    assert 'name="_save"' not in page
    assert admin_client.get(reverse("admin:albums_syncrun_add")).status_code == 403


def test_the_photo_pages_show_thumbnails(synced, syncer):
    client = logged_in(syncer)
    photo = Photo.objects.get(path="photo1.jpg")
    thumbnail_url = reverse("admin:albums_photo_thumbnail", args=[photo.pk])

    listing = client.get(reverse("admin:albums_photo_changelist")).content.decode()
    page = client.get(reverse("admin:albums_photo_change", args=[photo.pk])).content.decode()

    assert f'src="{thumbnail_url}?v={photo.mtime_ns}"' in listing
    assert f'src="{thumbnail_url}?v={photo.mtime_ns}"' in page
    assert "albums/summer-2024/photo1.jpg" in page
    for query in (
        "?state=uploaded",
        "?state=found",
        "?state=unverified",
        "?failed=yes",
        f"?album__id__exact={synced.pk}",
    ):
        assert client.get(reverse("admin:albums_photo_changelist") + query).status_code == 200


def test_thumbnails_are_served_to_staff_only_and_cached(
    synced, syncer, django_user_model, settings
):
    photo = Photo.objects.get(path="photo1.jpg")
    url = reverse("admin:albums_photo_thumbnail", args=[photo.pk])
    visitor = django_user_model.objects.create_user("visitor", password=PASSWORD)

    for client in (Client(), logged_in(visitor)):
        assert client.get(url).status_code == 302

    response = logged_in(syncer).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content).startswith(b"\xff\xd8")
    cached = list(settings.ALBUMS_THUMBNAIL_DIR.glob(f"{photo.pk}-*.jpg"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    assert logged_in(syncer).get(url).status_code == 200
    assert cached[0].stat().st_mtime_ns == mtime  # served from the cache


def test_a_photo_gone_from_disk_has_no_thumbnail(synced, syncer):
    photo = Photo.objects.get(path="photo2.jpg")
    (synced.path / "photo2.jpg").unlink()

    response = logged_in(syncer).get(reverse("admin:albums_photo_thumbnail", args=[photo.pk]))

    assert response.status_code == 404


def test_the_photo_page_links_to_a_presigned_object(album, s3, syncer):
    sync_album(album=album)
    photo = Photo.objects.get(path="photo1.jpg")

    page = (
        logged_in(syncer)
        .get(reverse("admin:albums_photo_change", args=[photo.pk]))
        .content.decode()
    )

    link = re.search(r'<a href="([^"]+)" rel="noreferrer">Open the object</a>', page).group(1)
    assert "albums/summer-2024/photo1.jpg" in link
    assert "X-Amz-Signature=" in link


def test_a_run_the_bucket_failed_shows_the_storage_diagnosis(album, s3, s3_requests, syncer):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "ListObjectsV2" else None
    )
    with pytest.raises(StorageAccessDenied):
        sync_album(album=album)
    run = SyncRun.objects.get()

    page = logged_in(syncer).get(reverse("admin:albums_syncrun_change", args=[run.pk]))

    content = page.content.decode()
    assert "What check_storage found" in content
    assert "Grant s3:ListBucket on the bucket" in content
    assert run.diagnosis["ok"] is False


def test_a_folder_outside_photos_root_is_refused_by_the_admin_form(
    photos_root, admin_client, tmp_path
):
    (photos_root / "link-out").symlink_to(tmp_path)
    client = admin_client
    for folder in ("../elsewhere", "/etc", "link-out"):
        page = client.post(
            reverse("admin:albums_album_add"),
            {"name": "Escape", "slug": "escape", "folder": folder, "sync_on_schedule": "on"},
        )
        assert page.status_code == 200  # the form again, with the error
        assert b"PHOTOS_ROOT" in page.content
    assert not Album.objects.exists()


def test_the_photo_filters_return_the_photos_of_each_albums_last_sync(
    album, s3, s3_requests, syncer, photos_root, settings
):
    """ "Failed in the last sync" and "not verified by the album's last sync" look at each
    album's own last run: a photo of another album with the same path is never taken."""
    write_photo(photos_root / "Other" / "photo2.jpg")
    other = Album.objects.create(name="Other", slug="other", folder="Other")
    sync_album(album=album)
    sync_album(album=other)
    # photo2 changed on disk, and its new upload fails; the one in the subfolder was written
    # just now and is left for the next run: neither is verified by the album's last sync.
    write_photo(album.path / "photo2.jpg", color=(1, 2, 3), mtime_ns=1_700_000_099_000_000_000)
    settings.ALBUMS_SETTLE_SECONDS = 2
    s3_requests.fault = lambda op, request: (
        s3_error(request, 500, "InternalError")
        if op == "PutObject" and "photo2.jpg" in request.url
        else None
    )
    with Appender(album.path / "day 2" / "100% fun #1.jpg"):
        assert sync_album(album=album).status == "partial"

    def photos(query):
        response = logged_in(syncer).get(reverse("admin:albums_photo_changelist") + query)
        return sorted((p.album.slug, p.path) for p in response.context["cl"].queryset)

    assert photos("?failed=yes") == [("summer-2024", "photo2.jpg")]
    assert photos("?state=unverified") == [
        ("summer-2024", "day 2/100% fun #1.jpg"),
        ("summer-2024", "photo2.jpg"),
    ]


def test_the_admin_shows_what_an_exclusion_left_out(synced, syncer, settings):
    settings.ALBUMS_EXCLUDE = "day 2/"
    write_photo(synced.path / "@eaDir" / "photo1.jpg" / "SYNOPHOTO_THUMB_XL.jpg")
    result = sync_album(album=synced)
    assert (result.excluded, result.excluded_recorded) == (2, 1)
    client = logged_in(syncer)

    run_page = client.get(reverse("admin:albums_syncrun_change", args=[result.run_id]))
    albums = client.get(reverse("admin:albums_album_changelist")).content.decode()
    photos = client.get(reverse("admin:albums_photo_changelist") + "?state=excluded")

    shown = dict(
        re.findall(
            r"<label>([^<]+):</label>\s*<div class=\"readonly\">([^<]*)</div>",
            run_page.content.decode(),
        )
    )
    assert (shown["Excluded"], shown["Recorded, now excluded"]) == ("2", "1")
    assert "0 sent, 0 failed, 2 excluded" in albums
    assert [photo.path for photo in photos.context["cl"].result_list] == ["day 2/100% fun #1.jpg"]


def test_videos_and_sidecars_get_an_icon_and_no_image_metadata(
    album, local_bucket, syncer, settings
):
    settings.ALBUMS_PHOTO_EXTENSIONS = "+xmp,mov"
    # A JPEG under a video's name: its type, not its bytes, says it is no image.
    (album.path / "clip.mov").write_bytes((album.path / "photo1.jpg").read_bytes())
    (album.path / "photo1.jpg.xmp").write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
    sync_album(album=album)
    video, sidecar = Photo.objects.get(path="clip.mov"), Photo.objects.get(path="photo1.jpg.xmp")
    assert (video.content_type, video.width, video.height, video.taken_at) == (
        "video/quicktime", None, None, None,
    )  # fmt: skip
    assert (sidecar.content_type, sidecar.width) == ("application/rdf+xml", None)
    client = logged_in(syncer)

    listing = client.get(reverse("admin:albums_photo_changelist")).content.decode()

    assert 'title="video/quicktime"' in listing and ">MOV</span>" in listing
    assert 'title="application/rdf+xml"' in listing and ">XMP</span>" in listing
    for photo in (video, sidecar):  # no thumbnail is asked for, so none can fail
        assert reverse("admin:albums_photo_thumbnail", args=[photo.pk]) not in listing
    image = Photo.objects.get(path="photo1.jpg")
    assert reverse("admin:albums_photo_thumbnail", args=[image.pk]) in listing
    thumbnail = client.get(reverse("admin:albums_photo_thumbnail", args=[video.pk]))
    assert thumbnail.status_code == 404


def test_the_admin_says_photosite_and_its_view_site_link_leads_to_the_site(syncer, album):
    client = logged_in(syncer)

    index = client.get(reverse("admin:index")).content.decode()
    login = Client().get(reverse("admin:login")).content.decode()

    assert "<title>Albums, sync runs and photos | photosite</title>" in index
    assert '<a href="/admin/">photosite</a>' in index
    assert "<title>Log in | photosite</title>" in login
    assert "Django administration" not in index + login
    assert '<a href="/">View site</a>' in index  # the public albums (albums.site)
    change = client.get(reverse("admin:albums_album_change", args=[album.pk])).content.decode()
    view_on_site = client.get(re.search(r'href="([^"]+)" class="viewsitelink"', change).group(1))
    assert view_on_site.status_code == 302
    assert view_on_site["Location"].endswith(f"/a/{album.slug}/")  # staff see a private album


# Web renditions in the admin -----------------------------------------------------------------


def thumbnail_srcs(page) -> list[str]:
    return re.findall(r'<img src="([^"]+)" alt="" loading="lazy"', page.content.decode())


def test_thumbnails_come_from_the_buckets_renditions_at_a_stable_url(album, s3, syncer, settings):
    settings.ALBUMS_RENDITIONS = True
    sync_album(album=album)
    shutil.rmtree(album.path)  # the web server needs no PHOTOS_ROOT any more
    photo = Photo.objects.get(path="photo1.jpg")

    first = thumbnail_srcs(logged_in(syncer).get(reverse("admin:albums_photo_changelist")))
    second = thumbnail_srcs(logged_in(syncer).get(reverse("admin:albums_photo_changelist")))

    assert len(first) == 3 and first == second  # the same signed URL: browsers cache it
    mine = next(src for src in first if photo.md5 in src)
    assert f"albums-renditions/{photo.md5[:2]}/{photo.md5}/400-q80-v1.webp" in mine
    assert "X-Amz-Signature=" in mine and "X-Amz-Expires=43200" in mine
    settings.ALBUMS_MEDIA_URL = "https://cdn.example.com/"
    cdn = thumbnail_srcs(logged_in(syncer).get(reverse("admin:albums_photo_changelist")))
    assert (
        f"https://cdn.example.com/albums-renditions/{photo.md5[:2]}/{photo.md5}/400-q80-v1.webp"
        in cdn
    )


def test_a_local_folder_bucket_serves_the_thumbnail_rendition_to_staff(synced, syncer, settings):
    settings.ALBUMS_RENDITIONS = True
    sync_album(album=synced, render_all=True)
    shutil.rmtree(synced.path)
    photo = Photo.objects.get(path="photo1.jpg")
    url = reverse("admin:albums_photo_thumbnail", args=[photo.pk])

    assert Client().get(url).status_code == 302
    response = logged_in(syncer).get(url)

    assert (response.status_code, response["Content-Type"]) == (200, "image/webp")
    assert b"".join(response.streaming_content)[8:12] == b"WEBP"


def test_a_photo_without_rendition_says_why_in_its_page_its_run_and_a_filter(
    album, s3, syncer, settings
):
    settings.ALBUMS_RENDITIONS = True
    (album.path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 50)
    result = sync_album(album=album)
    photo = Photo.objects.get(path="broken.jpg")
    client = logged_in(syncer)

    photo_page = client.get(reverse("admin:albums_photo_change", args=[photo.pk])).content.decode()
    run_page = client.get(
        reverse("admin:albums_syncrun_change", args=[result.run_id])
    ).content.decode()
    listed = client.get(reverse("admin:albums_photo_changelist") + "?renditions=problem")

    assert photo.rendition_problem.startswith("not an image Pillow can read")
    assert photo.rendition_problem in photo_page
    assert "Photos without web renditions" in run_page and photo.rendition_problem in run_page
    assert [row.path for row in listed.context["cl"].result_list] == ["broken.jpg"]


def test_the_render_action_queues_a_sync_that_renders_every_missing_rendition(
    album, local_bucket, syncer, settings, on_commit
):
    sync_album(album=album)  # with renditions off: none made
    settings.ALBUMS_RENDITIONS = True
    settings.ALBUMS_RENDITIONS_PER_RUN = 0

    with on_commit():
        response = logged_in(syncer).post(
            reverse("admin:albums_album_changelist"),
            {"action": "render_selected", "_selected_action": [album.pk]},
        )

    run = SyncRun.objects.latest("id")
    assert run.render_all and run.status == SyncStatus.SUCCESS
    assert "Queued the missing web renditions of 1 album:" in texts(response)[0]
    assert (run.rendered, run.unchanged) == (3, 3)
    assert set(Photo.objects.values_list("renditions", flat=True)) == {"v1-webp-q80-400-2048"}
