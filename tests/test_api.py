"""The HTTP door: POST /api/sync/, POST /api/albums/<slug>/sync/, GET /api/sync-runs/<id>/."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from albums import api
from albums.models import Album, ApiToken, SyncRun, SyncStatus
from albums.tokens import create_token
from tests.conftest import closed_port, write_photo

SYNC_ALL = "/api/sync/"
SYNC_ONE = "/api/albums/{slug}/sync/"
RUN = "/api/sync-runs/{id}/"


@pytest.fixture
def token(syncer) -> str:
    return create_token(user=syncer, name="cron")[1]


def post(client: Client, url: str, body=None, *, token: str | None = None, headers=None):
    headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    data = body if isinstance(body, str | bytes) else json.dumps(body) if body is not None else ""
    return client.post(url, data, content_type="application/json", headers=headers)


def test_a_token_queues_every_album_and_the_runs_finish(
    album, photos_root, local_bucket, token, on_commit
):
    write_photo(photos_root / "Winter" / "a.jpg")
    Album.objects.create(name="Winter", slug="winter", folder="Winter")

    with on_commit():
        response = post(Client(), SYNC_ALL, token=token)

    assert response.status_code == 202
    runs = response.json()["runs"]
    assert sorted(run["album"] for run in runs) == ["summer-2024", "winter"]
    assert {run["status"] for run in runs} == {"queued"}
    assert "warning" not in response.json()
    for run in runs:
        detail = Client().get(run["url"], headers={"Authorization": f"Bearer {token}"}).json()
        assert detail["status"] == SyncStatus.SUCCESS
        assert detail["trigger"] == "api"
        assert detail["uploaded"] == detail["files_total"] == detail["files_done"] > 0
    assert ApiToken.objects.get().last_used_at is not None


def test_a_list_of_slugs_queues_those_albums(
    album, photos_root, token, django_capture_on_commit_callbacks
):
    Album.objects.create(name="Winter", slug="winter", folder="Winter")

    with django_capture_on_commit_callbacks():
        response = post(Client(), SYNC_ALL, {"albums": ["winter"], "dry_run": True}, token=token)

    assert response.status_code == 202
    run = SyncRun.objects.get()
    assert (run.album.slug, run.dry_run, run.prune) == ("winter", True, False)
    assert response.json()["runs"][0]["id"] == run.pk


def test_the_seeds_path_without_a_slash_still_works(
    album, token, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        response = post(Client(), "/api/sync", token=token)

    assert response.status_code == 202


def test_one_album(album, local_bucket, token, on_commit):
    with on_commit():
        response = post(Client(), SYNC_ONE.format(slug="summer-2024"), {"prune": True}, token=token)

    assert response.status_code == 202
    run = SyncRun.objects.get()
    assert (run.status, run.prune) == (SyncStatus.SUCCESS, True)


def test_unknown_albums_are_404(album, token):
    response = post(Client(), SYNC_ALL, {"albums": ["summer-2024", "nope", "gone"]}, token=token)
    assert response.status_code == 404
    assert response.json() == {
        "error": api.UNKNOWN_ALBUMS.format(slugs="gone, nope"),
        "unknown": ["gone", "nope"],
    }

    response = post(Client(), SYNC_ONE.format(slug="nope"), token=token)
    assert response.status_code == 404
    assert not SyncRun.objects.exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("{not json", "The body is not valid JSON"),
        (b"\xff\xfe", "The body is not valid JSON"),
        ([], "The body must be a JSON object"),
        ({"album": ["summer-2024"]}, "The body must be a JSON object"),
        ({"albums": "summer-2024"}, api.BAD_ALBUMS),
        ({"albums": []}, api.BAD_ALBUMS),
        ({"albums": [1]}, api.BAD_ALBUMS),
        ({"dry_run": "yes"}, api.BAD_FLAG.format(name="dry_run")),
    ],
)
def test_bad_bodies_are_400(album, token, body, error):
    response = post(Client(), SYNC_ALL, body, token=token)

    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert not SyncRun.objects.exists()


def test_a_run_reports_status_and_counts(album, token):
    run = SyncRun.objects.create(
        album=album,
        trigger="admin",
        status="running",
        files_done=2,
        files_total=5,
        uploaded=2,
        deferred=1,
    )

    response = Client().get(RUN.format(id=run.pk), headers={"Authorization": f"Bearer {token}"})

    data = response.json()
    assert response.status_code == 200
    assert (data["id"], data["album"], data["status"]) == (run.pk, "summer-2024", "running")
    assert (data["files_done"], data["files_total"], data["uploaded"]) == (2, 5, 2)
    assert data["deferred"] == 1  # every count of the run, those added later included
    assert (
        Client().get(RUN.format(id=999), headers={"Authorization": f"Bearer {token}"}).status_code
        == 404
    )


def test_wrong_methods_are_405(album, token):
    auth = {"Authorization": f"Bearer {token}"}

    get = Client().get(SYNC_ALL, headers=auth)
    assert (get.status_code, get["Allow"]) == (405, "POST")
    assert get.json()["error"] == api.METHOD_NOT_ALLOWED.format(allowed="POST")
    assert post(Client(), RUN.format(id=1), token=token).status_code == 405


def test_anonymous_and_bad_tokens_are_401(album):
    anonymous = post(Client(), SYNC_ALL)
    bad = post(Client(), SYNC_ALL, token="not-a-token")

    assert (anonymous.status_code, anonymous.json()["error"]) == (401, api.NOT_AUTHENTICATED)
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert (bad.status_code, bad.json()["error"]) == (401, api.BAD_TOKEN)
    assert Client().get(RUN.format(id=1)).status_code == 401
    assert not SyncRun.objects.exists()


def test_users_without_the_permission_are_403(album, viewer, django_user_model):
    outsider = django_user_model.objects.create_user("outsider")
    outsider.user_permissions.set(viewer.user_permissions.all())  # not staff
    session = Client()
    session.force_login(viewer)

    for response in (
        post(Client(), SYNC_ALL, token=create_token(user=viewer)[1]),
        post(Client(), SYNC_ALL, token=create_token(user=outsider)[1]),
        post(session, SYNC_ALL),
    ):
        assert (response.status_code, response.json()["error"]) == (403, api.FORBIDDEN)
    assert not SyncRun.objects.exists()


def test_an_inactive_users_token_is_refused(album, syncer):
    _, token = create_token(user=syncer)
    syncer.is_active = False
    syncer.save()

    assert post(Client(), SYNC_ALL, token=token).status_code == 401


def test_a_session_needs_the_csrf_token(album, syncer, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    client.force_login(syncer)

    refused = post(client, SYNC_ALL)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("CSRF check failed")

    client.get("/admin/")  # sets the CSRF cookie, as any admin page does
    with django_capture_on_commit_callbacks():
        accepted = post(
            client, SYNC_ALL, headers={"X-CSRFToken": client.cookies["csrftoken"].value}
        )
    assert accepted.status_code == 202
    assert SyncRun.objects.get().trigger == "api"
    # A session may read runs without a CSRF token: GET changes nothing.
    assert client.get(RUN.format(id=SyncRun.objects.get().pk)).status_code == 200


def test_no_worker_is_reported(album, token, monkeypatch, django_capture_on_commit_callbacks):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    with django_capture_on_commit_callbacks():
        response = post(Client(), SYNC_ALL, token=token)

    assert response.json()["warning"] == api.NO_WORKER


@pytest.mark.django_db(transaction=True)  # autocommit, as a request runs: enqueued at once
def test_a_task_queue_that_cannot_be_reached_is_503(album, token, monkeypatch):
    from django_q.conf import Conf

    port = closed_port()
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", f"redis://127.0.0.1:{port}/0")

    response = post(Client(), SYNC_ALL, token=token)

    assert response.status_code == 503
    assert response.json()["error"].startswith(
        f"The task queue (Redis at 127.0.0.1:{port}) cannot be reached:"
    )
    assert SyncRun.objects.get().status == SyncStatus.FAILED


def test_create_api_token_prints_it_once_and_stores_a_hash(syncer, viewer):
    out, err = StringIO(), StringIO()
    call_command("create_api_token", "syncer", "--name", "backup job", stdout=out, stderr=err)

    token = out.getvalue().strip()
    stored = ApiToken.objects.get()
    assert len(token) >= 40 and err.getvalue() == ""
    assert (stored.user, stored.name) == (syncer, "backup job")
    assert token not in stored.token_hash

    call_command("create_api_token", "viewer", stdout=StringIO(), stderr=err)
    assert "albums.sync_album" in err.getvalue()
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_api_token", "nobody")
