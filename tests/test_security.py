"""Settings that keep a deployment safe, and credentials that never leak."""

import json
import logging
import secrets
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from albums.exceptions import StorageUnreachable
from albums.models import SyncRun
from albums.sync import sync_album
from tests.conftest import FAKE_SECRET, closed_port, run_manage, use_s3

PROJECT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    return run_manage(*args, env={"DATABASE_URL": "sqlite:///:memory:", **env})


def test_production_settings_pass_the_deployment_check():
    process = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="photos.example.com",
    )  # fmt: skip
    assert process.returncode == 0, process.stdout + process.stderr


def test_debug_is_off_and_a_secret_key_is_required_unless_asked_for():
    missing = manage("check")
    assert missing.returncode == 1
    assert "Configuration error: DJANGO_SECRET_KEY is not set" in missing.stderr
    assert "Traceback" not in missing.stderr

    shown = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        DJANGO_SECRET_KEY="k",
    )
    assert shown.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.django_db
def test_credentials_never_reach_logs_records_errors_or_json(album, s3, settings, caplog):
    caplog.set_level(logging.DEBUG)  # botocore's own debug logging included
    out = StringIO()
    call_command("sync_albums", "--json", stdout=out, stderr=StringIO())
    use_s3(
        settings, AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}", AWS_S3_MAX_ATTEMPTS="1"
    )
    with pytest.raises(StorageUnreachable) as caught:
        sync_album(album=album)

    runs = json.dumps(list(SyncRun.objects.values()), default=str)
    for text in (caplog.text, out.getvalue(), str(caught.value), runs):
        assert FAKE_SECRET not in text
    assert "Cannot reach" in runs  # the failure itself is recorded
