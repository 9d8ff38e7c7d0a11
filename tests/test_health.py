"""GET /api/health/: what a monitor or a load balancer polls, without logging in."""

import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from django.utils import timezone

from albums import health
from albums.models import Album, SyncRun, SyncStatus
from albums.schedule import ensure_sync_schedule
from tests.conftest import FAKE_SECRET, closed_port, run_manage, use_s3

HEALTH = "/api/health/"


def iso(moment) -> str:
    return DjangoJSONEncoder().default(moment)


def scheduled_album(slug: str, *, age: timedelta, on_schedule=True) -> Album:
    album = Album.objects.create(name=slug, slug=slug, folder=slug, sync_on_schedule=on_schedule)
    Album.objects.filter(pk=album.pk).update(created_at=timezone.now() - age)
    return album


def run(album: Album, status: str, *, ago: timedelta, dry_run=False) -> SyncRun:
    finished = timezone.now() - ago
    return SyncRun.objects.create(
        album=album, trigger="schedule", status=status, dry_run=dry_run,
        started_at=finished - timedelta(seconds=30), finished_at=finished,
    )  # fmt: skip


def test_a_healthy_site_answers_200_to_anyone(db):
    album = scheduled_album("summer", age=timedelta(days=30))
    last = run(album, SyncStatus.SUCCESS, ago=timedelta(minutes=50))
    scheduled_album("old-and-unscheduled", age=timedelta(days=300), on_schedule=False)

    response = Client().get(HEALTH)

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data = response.json()
    assert data == {
        "status": "ok",
        "database": True,
        "worker_seen": True,  # the tests' sync mode: tasks run in the caller
        "interval_minutes": 60,
        "scheduled_albums": 1,
        "overdue_albums": 0,
        "oldest_last_success": iso(last.finished_at),
        "overdue": False,
        "problems": [],
    }


def test_a_scheduled_album_without_success_for_two_intervals_is_503(db):
    stale = scheduled_album("stale", age=timedelta(days=30))
    old_success = run(stale, SyncStatus.SUCCESS, ago=timedelta(minutes=130))
    # Neither a later failure, a partial run nor a dry run counts as a success.
    run(stale, SyncStatus.FAILED, ago=timedelta(minutes=65))
    run(stale, SyncStatus.PARTIAL, ago=timedelta(minutes=5))
    run(stale, SyncStatus.SUCCESS, ago=timedelta(minutes=1), dry_run=True)
    fresh = scheduled_album("fresh", age=timedelta(days=30))
    run(fresh, SyncStatus.SUCCESS, ago=timedelta(minutes=10))
    scheduled_album("just-added", age=timedelta(minutes=5))  # never synced, not yet due

    response = Client().get(HEALTH)

    assert response.status_code == 503
    data = response.json()
    assert (data["status"], data["database"], data["overdue"]) == ("failing", True, True)
    assert (data["scheduled_albums"], data["overdue_albums"]) == (3, 1)
    assert data["oldest_last_success"] == iso(old_success.finished_at)
    assert data["problems"] == [health.OVERDUE.format(count=1, minutes=120)]


def test_an_album_never_synced_is_overdue_two_intervals_after_it_was_added(db):
    scheduled_album("new", age=timedelta(minutes=119))
    assert Client().get(HEALTH).status_code == 200

    Album.objects.update(created_at=timezone.now() - timedelta(minutes=121))
    response = Client().get(HEALTH)
    assert response.status_code == 503
    assert response.json()["oldest_last_success"] is None


def test_the_interval_is_the_schedules_own_once_edited_in_the_admin(db):
    album = scheduled_album("daily", age=timedelta(days=30))
    run(album, SyncStatus.SUCCESS, ago=timedelta(hours=5))
    assert Client().get(HEALTH).status_code == 503  # 5 h > 2 x 60 min

    schedule, _ = ensure_sync_schedule()
    schedule.minutes = 180
    schedule.save()
    assert Client().get(HEALTH).json()["interval_minutes"] == 180
    assert Client().get(HEALTH).status_code == 200  # 5 h < 2 x 3 h

    schedule.schedule_type, schedule.minutes = schedule.DAILY, None
    schedule.save()
    assert Client().get(HEALTH).json()["interval_minutes"] == 24 * 60


def test_no_worker_is_reported_but_is_not_a_failure(db, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # a real check: no cluster has reported

    response = Client().get(HEALTH)

    assert (response.status_code, response.json()["worker_seen"]) == (200, False)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_only_get_is_allowed(db, method):
    response = getattr(Client(enforce_csrf_checks=True), method)(HEALTH)

    assert (response.status_code, response["Allow"]) == (405, "GET, HEAD")
    assert response.json() == {"error": health.METHOD_NOT_ALLOWED}
    assert Client().head(HEALTH).status_code == 200


def test_the_answer_names_no_album_path_or_secret(db, settings, album, photos_root):
    use_s3(settings)  # the bucket's credentials are configured, with a recognisable secret
    run(album, SyncStatus.FAILED, ago=timedelta(days=3))
    Album.objects.update(created_at=timezone.now() - timedelta(days=10))

    response = Client().get(HEALTH)

    assert response.status_code == 503
    text = response.content.decode()
    for secret in (FAKE_SECRET, "FAKEACCESSKEY", django_settings.SECRET_KEY):
        assert secret not in text
    for private in (album.name, album.slug, album.folder, str(photos_root), "photosite-test"):
        assert private not in text


def test_plain_http_is_answered_where_every_other_page_goes_to_https(db, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert Client().get(HEALTH).status_code == 200
    assert Client().get("/admin/login/").status_code == 301


def test_a_database_that_does_not_answer_is_503_and_names_nothing(tmp_path):
    """A real process whose PostgreSQL server is down (a closed port): no traceback, no host,
    user or password in the answer or the log."""
    database = f"postgres://photosite:{FAKE_SECRET}@127.0.0.1:{closed_port()}/photosite"
    code = (
        "from django.test import Client; r = Client().get('/api/health/'); "
        "print(r.status_code); print(r.content.decode())"
    )
    process = run_manage(
        "shell", "--verbosity", "0", "-c", code,
        env={"HOME": str(tmp_path), "DJANGO_SECRET_KEY": "health", "DATABASE_URL": database,
             "DJANGO_ALLOWED_HOSTS": "testserver", "DJANGO_HTTPS": "0"},
    )  # fmt: skip

    assert process.returncode == 0, process.stderr
    status, body = process.stdout.strip().split("\n", 1)
    assert status == "503"
    data = json.loads(body)
    assert (data["status"], data["database"], data["worker_seen"]) == ("failing", False, None)
    assert data["problems"] == [health.DATABASE_DOWN]
    for text in (process.stdout, process.stderr):
        assert FAKE_SECRET not in text and "Traceback" not in text
    assert "127.0.0.1" not in process.stdout and "photosite:" not in process.stdout
