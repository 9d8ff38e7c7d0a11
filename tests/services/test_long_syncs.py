"""A background sync longer than its task may run (issue 28): it stops itself before the task
timeout, what it did recorded, and goes on in runs of its own until the album is synced; one
the timeout stops anyway is picked up by the next run, which sends nothing twice and says so.

The task runs here (Q_CLUSTER sync mode, on commit); a tiny ALBUMS_TASK_BUDGET_SECONDS and a
moto bucket whose uploads take 0.1 s each make a run outlast its budget. The real thing, a
`qcluster` with a timeout of a few seconds, is tests/test_qcluster.py's.
"""

import itertools
import os
import signal
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings
from django.urls import reverse
from django_q.timeout import TimeoutHandler

from albums import conf
from albums.models import Album, Photo, SyncRun
from albums.sync import queue_sync, queue_syncs, run_queued_sync
from albums.sync.engine import budget
from albums.sync.outcome.result import STOPPED_BY_EXIT
from albums.sync.records.runs import RESUMED
from albums.sync.usecases.continued import CONTINUED, DRY_RUN_STOPPED, NO_PROGRESS

pytestmark = pytest.mark.django_db
UPLOAD_SECONDS = 0.125  # each PutObject takes (a binary fraction: the clock adds it exactly)


def make_album(root: Path, name: str, photos: int) -> Album:
    for number in range(photos):
        path = root / name / f"{number:03}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(512))
        os.utime(path, (1_700_000_000, 1_700_000_000))
    return Album.objects.create(name=name, slug=name.lower(), folder=name)


@pytest.fixture
def one_at_a_time(settings, s3_requests):
    """One upload at a time; the requests counted."""
    settings.ALBUMS_SYNC_WORKERS = settings.ALBUMS_SYNC_BATCH_SIZE = "1"
    return s3_requests


@pytest.fixture
def clock(one_at_a_time, monkeypatch):
    """The budget's clock, moved on by UPLOAD_SECONDS with each upload and by nothing else:
    a run spends its budget after as many uploads, however busy the machine is."""
    now = [0.0]
    monkeypatch.setattr(budget, "monotonic", lambda: now[0])

    def upload_takes_time(operation, request):
        if operation == "PutObject":
            now[0] += UPLOAD_SECONDS

    one_at_a_time.fault = upload_takes_time
    return one_at_a_time


@pytest.fixture
def slow(one_at_a_time):
    """Uploads that really take UPLOAD_SECONDS each."""
    one_at_a_time.fault = lambda operation, request: (
        time.sleep(UPLOAD_SECONDS) if operation == "PutObject" else None
    )
    return one_at_a_time


def sent_keys(requests) -> list[str]:
    return [url.rsplit("/", 2)[-2:] for operation, url in requests.keys if operation == "PutObject"]


def album_runs(album: Album) -> list[SyncRun]:
    return list(SyncRun.objects.filter(album=album).order_by("id"))


def assert_a_chain_that_ends_synced(runs: list[SyncRun], *, seconds: str) -> None:
    """Continued runs, each followed by the next, then one success; nothing left open."""
    assert [run.status for run in runs] == ["continued"] * (len(runs) - 1) + ["success"]
    for before, after in itertools.pairwise(runs):
        assert before.message == CONTINUED.format(seconds=seconds, run=after.pk)
        assert (after.follows_id, after.resumed_photos) == (before.pk, None)
        assert after.trigger == before.trigger


def test_a_sync_past_its_budget_goes_on_in_runs_of_its_own_and_sends_nothing_twice(
    photos_root, s3, clock, settings, on_commit
):
    album = make_album(photos_root, "Big", 12)
    settings.ALBUMS_TASK_BUDGET_SECONDS = "0.375"  # three uploads a run

    with on_commit():  # the task runs as the queue commits, and so do those it queues
        first = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN)

    runs = album_runs(album)
    assert runs[0].pk == first.pk
    assert_a_chain_that_ends_synced(runs, seconds="0.375 s")
    assert [run.uploaded for run in runs] == [3, 3, 3, 3]
    # Nothing sent twice, and continuing costs one listing a run.
    assert clock.counts["PutObject"] == len(set(map(tuple, sent_keys(clock)))) == 12
    assert clock.counts["ListObjectsV2"] == len(runs)
    assert len(s3.object_keys()) == Photo.objects.filter(album=album).count() == 12
    album.refresh_from_db()
    assert (album.last_sync_status, album.sync_lease_token) == ("success", "")


def test_a_run_over_many_albums_past_its_budget_goes_on_with_the_albums_left(
    photos_root, s3, clock, settings, on_commit
):
    # Each album needs more than a task's budget: the first is stopped midway, the others
    # are not reached by the first task.
    albums = [make_album(photos_root, f"Event{number}", 6) for number in range(4)]
    settings.ALBUMS_TASK_BUDGET_SECONDS = "0.5"  # four uploads a task

    with on_commit():
        queued = queue_syncs(albums=albums, trigger=SyncRun.Trigger.SCHEDULE)

    first_queued_at = queued[0].queued_at
    for album in albums:
        assert_a_chain_that_ends_synced(album_runs(album), seconds="0.5 s")
    assert album_runs(albums[0])[0].status == "continued"
    # Albums the first task never reached kept their run, queued again for the next task.
    requeued = SyncRun.objects.filter(follows__isnull=True, queued_at__gt=first_queued_at)
    assert set(requeued.values_list("album__slug", flat=True)) == {"event1", "event2", "event3"}
    assert clock.counts["PutObject"] == len(set(map(tuple, sent_keys(clock)))) == 24
    assert len(s3.object_keys()) == Photo.objects.count() == 24
    assert not Album.objects.filter(sync_lease_token__gt="").exists()
    assert set(Album.objects.values_list("last_sync_status", flat=True)) == {"success"}


def test_a_prune_that_waits_for_the_other_albums_waits_for_the_run_that_goes_on(
    photos_root, s3, clock, settings, on_commit
):
    """An album whose prune waits for the albums after it (a photo gone from it may have
    moved to one of them) does not prune when the budget stops the run before them: it goes
    on with them, and prunes once they have all passed."""
    albums = [make_album(photos_root, f"Trip{number}", 2) for number in range(3)]
    with on_commit():
        queue_syncs(albums=albums, trigger=SyncRun.Trigger.ADMIN)
    for path in (photos_root / "Trip0").iterdir():
        path.unlink()
    for number in range(3):  # new photos: this time the albums need more than one task
        for photo in range(3):
            path = photos_root / f"Trip{number}" / f"new{photo}.jpg"
            path.write_bytes(os.urandom(512))
            os.utime(path, (1_700_000_000, 1_700_000_000))
    clock.reset()
    settings.ALBUMS_TASK_BUDGET_SECONDS = "0.5"  # four uploads a task: Trip0's three, then one

    with on_commit():
        queue_syncs(albums=albums, trigger=SyncRun.Trigger.ADMIN, prune=True)

    runs = SyncRun.objects.filter(prune=True)
    first = runs.filter(album=albums[0]).order_by("id").first()
    assert (first.status, first.uploaded, first.pruned) == ("continued", 3, 0)  # it waited
    assert {run.status for run in runs} == {"continued", "success"}
    assert sum(run.pruned for run in runs) == 2
    assert (clock.counts["PutObject"], clock.counts["DeleteObjects"]) == (9, 1)
    assert sorted(s3.object_keys()) == sorted(
        f"albums/{photo.album.slug}/{photo.path}" for photo in Photo.objects.all()
    )
    assert Photo.objects.count() == 4 + 9


def test_a_budget_spent_without_recording_a_photo_fails_rather_than_loop(
    photos_root, s3, one_at_a_time, settings, on_commit
):
    alone = make_album(photos_root, "Alone", 3)
    others = [make_album(photos_root, f"Other{number}", 2) for number in range(2)]
    settings.ALBUMS_TASK_BUDGET_SECONDS = "0.000001"  # spent before the first photo

    with on_commit():
        queue_sync(album=alone, trigger=SyncRun.Trigger.ADMIN)
        queue_syncs(albums=others, trigger=SyncRun.Trigger.SCHEDULE)

    message = NO_PROGRESS.format(seconds="1e-06 s")
    runs = SyncRun.objects.all()
    assert [(run.status, run.message) for run in runs] == [("failed", message)] * 3
    assert "PutObject" not in one_at_a_time.counts
    assert not Album.objects.filter(sync_lease_token__gt="").exists()


def test_a_dry_run_past_its_budget_stops_and_says_why(photos_root, s3, settings, on_commit):
    album = make_album(photos_root, "Dry", 3)
    settings.ALBUMS_TASK_BUDGET_SECONDS = "0.000001"

    with on_commit():
        queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN, dry_run=True)

    run = SyncRun.objects.get()
    assert (run.status, run.message) == ("failed", DRY_RUN_STOPPED.format(seconds="1e-06 s"))


def test_a_sync_the_task_timeout_stops_is_resumed_by_the_next_and_the_admin_says_so(
    photos_root, s3, slow, admin_client
):
    """django-q2's own timeout (a SIGALRM after Q_TIMEOUT) strikes a sync that outlasts it:
    the run says so, what went up is recorded, and the next run sends only the rest."""
    album = make_album(photos_root, "Long", 20)  # 2.5 s of uploads against a 1 s timeout
    stopped = SyncRun.objects.create(album=album, trigger="schedule", status="queued")
    pytest_timeout = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)
    try:
        with pytest.raises(SystemExit), TimeoutHandler(1):
            run_queued_sync(stopped.pk)
    finally:  # pytest-timeout's own alarm, as it was
        signal.signal(signal.SIGALRM, pytest_timeout[0])
        signal.setitimer(signal.ITIMER_REAL, *pytest_timeout[1])

    stopped.refresh_from_db()
    assert (stopped.status, stopped.message) == ("failed", STOPPED_BY_EXIT)
    assert stopped.uploaded < 20
    resumed = SyncRun.objects.create(album=album, trigger="schedule", status="queued")
    result = run_queued_sync(resumed.pk)

    resumed.refresh_from_db()
    assert result.status == resumed.status == "success"
    assert (resumed.follows_id, resumed.resumed_photos) == (stopped.pk, stopped.uploaded)
    assert slow.counts["PutObject"] == len(set(map(tuple, sent_keys(slow)))) == 20
    photos = f"{stopped.uploaded} photo" + ("" if stopped.uploaded == 1 else "s")
    were = "was" if stopped.uploaded == 1 else "were"
    note = RESUMED.format(run=stopped.pk, photos=photos, were=were)
    run_page = admin_client.get(reverse("admin:albums_syncrun_change", args=[resumed.pk]))
    album_page = admin_client.get(reverse("admin:albums_album_change", args=[album.pk]))
    assert note in run_page.content.decode() and note in album_page.content.decode()


@pytest.mark.parametrize("alone", [True, False], ids=["alone", "with-another-album"])
def test_a_killed_syncs_successor_resumes_it_and_names_what_it_kept(
    photos_root, s3, on_commit, alone
):
    """A process killed mid-sync leaves its run "running"; the next run closes it as
    abandoned and follows it, counting the photos it had sent and recorded (alone, or in a
    run over several albums)."""
    album = make_album(photos_root, "Killed", 6)
    other = make_album(photos_root, "Other", 1)
    killed = SyncRun.objects.create(album=album, trigger="admin", status="queued")
    run_queued_sync(killed.pk)
    # As if its process had died before the end: the run open, three photos not sent yet.
    SyncRun.objects.filter(pk=killed.pk).update(status="running", finished_at=None)
    album.photos.filter(path__gte="003.jpg").delete()
    for key in s3.object_keys()[3:]:
        s3.delete(key)

    with on_commit():
        queued = queue_syncs(albums=[album] if alone else [album, other], trigger="schedule")

    killed.refresh_from_db()
    successor = SyncRun.objects.get(pk=queued[0].pk)
    assert killed.status == "failed" and "stopped before it finished" in killed.message
    assert (successor.status, successor.uploaded, successor.unchanged) == ("success", 3, 3)
    assert (successor.follows_id, successor.resumed_photos) == (killed.pk, 3)
    assert not SyncRun.objects.filter(album=other, follows__isnull=False).exists()


@pytest.mark.parametrize(
    ("value", "timeout", "expected"),
    [("", 21600, 16200.0), ("600", 21600, 600.0), ("2.5", 5, 2.5), ("", None, None)],
)
def test_the_budget_is_three_quarters_of_the_task_timeout_unless_set(value, timeout, expected):
    with override_settings(ALBUMS_TASK_BUDGET_SECONDS=value, Q_CLUSTER={"timeout": timeout}):
        assert conf.task_budget_seconds() == expected


@pytest.mark.parametrize("value", ["0", "-1", "soon", "21600", "nan"])
def test_a_budget_not_below_the_task_timeout_is_named(value):
    with (
        override_settings(ALBUMS_TASK_BUDGET_SECONDS=value, Q_CLUSTER={"timeout": 21600}),
        pytest.raises(ImproperlyConfigured, match=r"ALBUMS_TASK_BUDGET_SECONDS .* below Q_TIMEOUT"),
    ):
        conf.task_budget_seconds()
