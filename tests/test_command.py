"""`python manage.py sync_albums`: the command-line door."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from albums.models import Album, Photo
from tests.conftest import (
    FAKE_SECRET,
    closed_port,
    process_env,
    run_manage,
    s3_client,
    use_s3,
    write_photo,
)

pytestmark = pytest.mark.django_db
PROJECT = Path(__file__).resolve().parent.parent


def sync_albums(*args):
    out, err = StringIO(), StringIO()
    call_command("sync_albums", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_syncs_every_album_and_prints_one_line_each(album, local_bucket):
    out, _ = sync_albums()

    total_kb = sum(p.size for p in Photo.objects.all()) / 1000
    assert out.strip() == (
        "summer-2024: 3 photos, 3 uploaded, 0 re-uploaded, 0 already in bucket, 0 unchanged, "
        f"0 orphaned records removed ({total_kb:.1f} KB)"
    )
    out, _ = sync_albums("summer-2024")
    assert out.startswith(
        "summer-2024: 3 photos, 0 uploaded, 0 re-uploaded, 0 already in bucket, 3 unchanged"
    )


def test_discover_creates_albums_from_folders_then_syncs_them(photos_root, local_bucket):
    write_photo(photos_root / "Summer 2024" / "a.jpg")

    out, _ = sync_albums("--discover")

    assert "Discovered album 'Summer 2024' (summer-2024)." in out
    assert Album.objects.get().slug == "summer-2024"
    assert (local_bucket / "albums/summer-2024/a.jpg").exists()


def test_discover_skips_and_names_a_link_that_leaves_photos_root(
    photos_root, local_bucket, tmp_path, caplog
):
    elsewhere = tmp_path / "elsewhere"
    write_photo(elsewhere / "a.jpg")
    (photos_root / "Linked").symlink_to(elsewhere)
    write_photo(photos_root / "Inside" / "b.jpg")
    (photos_root / "Alias").symlink_to(photos_root / "Inside")  # stays inside: an album

    out, _ = sync_albums("--discover")

    assert sorted(Album.objects.values_list("folder", flat=True)) == ["Alias", "Inside"]
    assert f"Not an album: 'Linked' is a link to {elsewhere}, outside PHOTOS_ROOT." in caplog.text
    assert "Discovered album 'Linked'" not in out


def test_json_prints_one_object_per_album(album, local_bucket):
    out, _ = sync_albums("--json", "--dry-run")

    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 1
    assert lines[0]["album"] == "summer-2024" and lines[0]["uploaded"] == 3
    assert lines[0]["dry_run"] is True and lines[0]["status"] == "success"
    assert not Photo.objects.exists()


def test_unknown_slug_is_a_clear_error_and_nothing_runs(album, local_bucket):
    with pytest.raises(CommandError, match=r"Unknown album nope\. Known albums: summer-2024\."):
        sync_albums("summer-2024", "nope")
    assert not Photo.objects.exists()


@pytest.mark.parametrize("value", ["0", "-1", "ten"])
def test_bad_batch_size_is_refused(album, value):
    with pytest.raises(CommandError, match="--batch-size"):
        sync_albums("--batch-size", value)


def test_failed_album_makes_the_command_fail_but_others_still_sync(
    album, photos_root, local_bucket
):
    Album.objects.create(name="Gone", slug="gone", folder="Gone")

    with pytest.raises(CommandError, match=r"1 of 2 albums did not sync cleanly\."):
        sync_albums()
    assert Photo.objects.filter(album=album).count() == 3


def test_missing_folder_is_reported_without_traceback(photos_root, local_bucket, db):
    Album.objects.create(name="Gone", slug="gone", folder="Gone")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("sync_albums", stdout=StringIO(), stderr=err)
    assert "gone: The folder of album 'Gone'" in err.getvalue()
    assert "Traceback" not in err.getvalue()


# End to end, over real HTTP ------------------------------------------------------------


def test_end_to_end_over_http_uploads_once(album, moto_server, settings, s3_requests):
    use_s3(settings, AWS_S3_ENDPOINT_URL=moto_server)

    first, _ = sync_albums("--json")
    first_requests = dict(s3_requests.counts)
    s3_requests.reset()
    second, _ = sync_albums("--json")

    assert json.loads(first)["uploaded"] == 3
    assert first_requests == {"ListObjectsV2": 1, "PutObject": 3}
    assert json.loads(second)["unchanged"] == 3
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}
    client = s3_client(endpoint_url=moto_server)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="photosite-test")["Contents"]]
    assert "albums/summer-2024/day 2/100% fun #1.jpg" in keys


def test_end_to_end_as_a_process_with_the_real_settings(moto_server, tmp_path):
    """manage.py as an operator runs it: environment only, a file database, cron-style."""
    photos = tmp_path / "photos"
    write_photo(photos / "Summer 2024" / "a.jpg")
    write_photo(photos / "Summer 2024" / "b" / "c.jpg")
    env = process_env(tmp_path, moto_server, PHOTOS_ROOT=str(photos))

    def manage(*args):
        return run_manage(*args, env=env)

    assert manage("migrate", "-v0").returncode == 0
    first = manage("sync_albums", "--discover", "--json")
    second = manage("sync_albums", "--json")

    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.splitlines()[-1])["uploaded"] == 2
    assert json.loads(second.stdout)["unchanged"] == 2
    assert FAKE_SECRET not in first.stdout + first.stderr + second.stdout + second.stderr

    env["AWS_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{closed_port()}"
    env["AWS_S3_MAX_ATTEMPTS"] = "2"
    down = manage("sync_albums")
    assert down.returncode == 1
    assert "Cannot reach the bucket 'photosite-test'" in down.stderr
    assert "Traceback" not in down.stderr
    assert FAKE_SECRET not in down.stderr


def test_max_delete_without_prune_is_refused(album):
    with pytest.raises(CommandError, match="--max-delete limits --prune"):
        sync_albums("--max-delete", "5")


def test_a_bad_setting_stops_the_command_before_any_album(album, local_bucket, settings):
    settings.ALBUMS_SYNC_BATCH_SIZE = "ten"

    with pytest.raises(
        CommandError,
        match="ALBUMS_SYNC_BATCH_SIZE must be a whole number of at least 1, such as 10, not 'ten'",
    ):
        sync_albums()
    assert not album.sync_runs.exists()


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("nosuchdb://x/y", "Configuration error: DATABASE_URL is not valid"),
        ("postgres://postgres@127.0.0.1:{port}/none", "Database error: "),
        ("sqlite:///{tmp}/never-migrated.sqlite3", "run 'python manage.py migrate'"),
    ],
    ids=["unknown-scheme", "server-down", "not-migrated"],
)
def test_database_problems_are_clear_errors_without_traceback(tmp_path, database_url, expected):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SECRET_KEY": "x",
        "PHOTOS_ROOT": str(tmp_path),
        "DATABASE_URL": database_url.format(port=closed_port(), tmp=tmp_path),
    }
    process = subprocess.run(
        [sys.executable, "manage.py", "sync_albums"], cwd=PROJECT, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert process.returncode == 1
    assert expected in process.stderr
    assert "Traceback" not in process.stderr


def test_a_nas_share_syncs_only_the_photos_as_a_new_user_would_see_it(moto_server, tmp_path):
    """Issue 15's report, as a process: a Synology share with its thumbnails and recycle bin."""
    share = tmp_path / "photos"
    write_photo(share / "nas" / "IMG_1.JPG")
    write_photo(share / "nas" / "@eaDir" / "IMG_1.JPG" / "SYNOPHOTO_THUMB_XL.jpg")
    write_photo(share / "nas" / "#recycle" / "old.jpg")
    write_photo(share / "@eaDir" / "nas" / "SYNOPHOTO_THUMB_XL.jpg")
    write_photo(share / "#recycle" / "old" / "old.jpg")
    env = process_env(tmp_path, moto_server, PHOTOS_ROOT=str(share))
    assert run_manage("migrate", "-v0", env=env).returncode == 0

    first = run_manage("sync_albums", "--discover", "-v", "2", env=env)
    second = run_manage("sync_albums", env=env)

    assert first.returncode == 0, first.stderr
    assert "Discovered album 'nas' (nas)." in first.stdout
    assert first.stdout.splitlines()[-1].startswith(
        "nas: 1 photo, 1 uploaded, 0 re-uploaded, 0 already in bucket, 0 unchanged, "
        "0 orphaned records removed, 2 excluded"
    )
    assert "Excluded (built-in: Synology thumbnails and metadata): @eaDir/" in first.stderr
    assert "Excluded (built-in: Synology recycle bin): #recycle/" in first.stderr
    listed = s3_client(endpoint_url=moto_server).list_objects_v2(Bucket="photosite-test")
    keys = [item["Key"] for item in listed["Contents"]]
    assert [key for key in keys if not key.startswith("albums-renditions/")] == [
        "albums/nas/IMG_1.JPG"
    ]
    assert len(keys) == 3  # and its thumbnail and display size, beside the albums
    assert second.returncode == 0, second.stderr
    assert "0 uploaded, 0 re-uploaded, 0 already in bucket, 1 unchanged" in second.stdout

    bad = run_manage("sync_albums", env={**env, "ALBUMS_EXCLUDE": "drafts/, raw\\"})
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "CommandError: ALBUMS_EXCLUDE: 'raw\\\\' is not a valid gitignore-style pattern "
        "(escape character found with no next character to escape)."
    )


def test_json_counts_what_was_excluded(album, local_bucket, settings):
    settings.ALBUMS_EXCLUDE = "day 2/"

    out, _ = sync_albums("--json")

    line = json.loads(out)
    assert (line["excluded"], line["excluded_recorded"], line["uploaded"]) == (1, 0, 2)


def test_prune_excluded_is_an_option_of_a_run_here(album, local_bucket, settings):
    sync_albums()
    settings.ALBUMS_EXCLUDE = "day 2/"

    with pytest.raises(CommandError, match="--prune-excluded apply only to a sync run here"):
        sync_albums("--async", "--prune-excluded")
    out, _ = sync_albums("--prune-excluded", "--max-delete", "1")

    assert "1 recorded photo now excluded, 1 excluded pruned from bucket" in out
    assert not (local_bucket / "albums/summer-2024/day 2/100% fun #1.jpg").exists()
    assert Photo.objects.count() == 2


def test_a_malformed_album_ignore_file_fails_that_album_with_its_line(album, local_bucket):
    (album.path / ".photosite-ignore").write_text("drafts/\n[z-a].jpg\n")

    with pytest.raises(CommandError, match=r"^1 of 1 albums did not sync cleanly\.$"):
        sync_albums()

    run = album.sync_runs.get()
    assert run.status == "failed" and "line 2: '[z-a].jpg' is not a valid" in run.message
    assert "(bad character range z-a)" in run.message and not Photo.objects.exists()


# render_albums -------------------------------------------------------------------------------


def render_albums(*args):
    out, err = StringIO(), StringIO()
    call_command("render_albums", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_render_albums_makes_every_missing_rendition_and_force_makes_them_again(
    album, local_bucket, settings
):
    sync_albums()  # renditions are off in the tests' settings: none made
    settings.ALBUMS_RENDITIONS = True
    settings.ALBUMS_RENDITIONS_PER_RUN = 1
    (album.path / "broken.jpg").write_bytes(b"not a photo at all" * 100)

    out, _ = render_albums("summer-2024")
    again, _ = render_albums("--missing", "--json")
    forced, _ = render_albums("--force", "--json")

    assert out.strip().startswith(
        "summer-2024: 4 photos, 1 uploaded, 0 re-uploaded, 0 already in bucket, 3 unchanged, "
        "0 orphaned records removed, 3 rendered, 1 without rendition ("
    )
    assert {p.renditions for p in Photo.objects.all()} == {"v1-webp-q80-400-2048"}
    assert len(list((local_bucket / "albums-renditions").rglob("*.webp"))) == 6
    line = json.loads(again)
    assert (line["rendered"], line["not_rendered"], line["unchanged"]) == (0, 0, 4)
    line = json.loads(forced)
    assert (line["rendered"], line["not_rendered"], line["uploaded"]) == (3, 1, 0)
    assert line["rendition_problems"][0]["path"] == "broken.jpg"


@pytest.mark.parametrize(
    ("args", "setting", "message"),
    [
        (["--force", "--missing"], True, "--force renders every photo, --missing only those"),
        (["--force", "--async"], True, "--force runs here only;"),
        ([], False, "ALBUMS_RENDITIONS is off: turn it on to make web renditions."),
    ],
)
def test_render_albums_refuses_what_it_cannot_do(
    album, local_bucket, settings, args, setting, message
):
    settings.ALBUMS_RENDITIONS = setting

    with pytest.raises(CommandError, match=message):
        render_albums(*args)

    assert not Photo.objects.exists()


def test_a_bad_rendition_setting_stops_the_command_before_any_album(album, local_bucket, settings):
    settings.ALBUMS_RENDITIONS = True
    settings.ALBUMS_RENDITION_SIZES = "400,huge"

    with pytest.raises(CommandError, match="ALBUMS_RENDITION_SIZES must list long edges"):
        sync_albums()

    assert not Photo.objects.exists()
