"""`python manage.py check_storage`: what is wrong with the photos storage, and how to fix it."""

import json
from io import StringIO
from pathlib import Path

from django.core.management import CommandError, call_command

from albums.storage import ProblemKind
from albums.storage import diagnostics as d
from albums.storage.errors import FIXES
from tests.conftest import (
    FAKE_SECRET,
    closed_port,
    process_env,
    run_manage,
    s3_client,
    s3_error,
    use_s3,
)

PROJECT = Path(__file__).resolve().parent.parent
S3_CHECKS = [
    "endpoint",
    "region",
    "credentials",
    "bucket",
    "list",
    "missing key",
    "write",
    "read back",
    "delete",
]
WHERE = "bucket 'photosite-test'"


def check_storage(*args) -> tuple[str, str | None]:
    """The command's output and its error (None when it exited 0); never a credential."""
    out, err = StringIO(), StringIO()
    try:
        call_command("check_storage", *args, stdout=out, stderr=err)
        error = None
    except CommandError as exc:
        error = str(exc)
    assert FAKE_SECRET not in out.getvalue() + err.getvalue() + (error or "")
    return out.getvalue(), error


def diagnosis() -> tuple[dict[str, dict], str | None]:
    """The checks from `--json`, by name, in order, and the command's error."""
    out, error = check_storage("--json")
    checks = {check["name"]: check for check in json.loads(out)["checks"]}
    return checks, error


def statuses(checks: dict[str, dict]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def failed(names: list[str], *, then_skipped: list[str] = ()) -> dict[str, str]:
    """Statuses: every S3 check ok but `names` failed and `then_skipped` skipped."""
    status = {name: "ok" for name in S3_CHECKS}
    status.update({name: "failed" for name in names})
    status.update({name: "skipped" for name in then_skipped})
    return status


# The all-good case ---------------------------------------------------------------------


def test_a_usable_bucket_passes_every_check_and_keeps_nothing(s3, s3_requests):
    s3.put("albums/summer-2024/a.jpg", b"photo")

    out, error = check_storage()

    assert error is None
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"OK   {name}" for name in S3_CHECKS]
    assert lines[-1] == f"All 9 checks passed for the {WHERE}."
    assert s3.object_keys() == ["albums/summer-2024/a.jpg"]
    assert dict(s3_requests.counts) == {
        "ListObjectsV2": 1,
        "HeadObject": 2,
        "PutObject": 1,
        "DeleteObject": 1,
    }
    written = [url for op, url in s3_requests.keys if op in {"PutObject", "DeleteObject"}]
    assert len(written) == 2 and all(".amazonaws.com/albums-check/probe-" in u for u in written)


# One failure at a time -----------------------------------------------------------------


def test_endpoint_refusing_connections_fails_first_and_skips_the_rest(settings, s3_requests):
    port = closed_port()
    use_s3(settings, AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_S3_MAX_ATTEMPTS="1")

    checks, error = diagnosis()

    assert statuses(checks) == failed(["endpoint"], then_skipped=S3_CHECKS[1:])
    endpoint = checks["endpoint"]
    assert endpoint["detail"].startswith(
        f"cannot reach {WHERE} at http://127.0.0.1:{port}: Could not connect to the endpoint URL"
    )
    assert endpoint["fix"] == FIXES[ProblemKind.UNREACHABLE]
    assert endpoint["fix"] == "Check AWS_S3_ENDPOINT_URL and the network."
    assert checks["write"]["detail"] == "not checked, as endpoint failed"
    assert error == f"1 of 9 checks failed for the {WHERE} at http://127.0.0.1:{port}."
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}


def test_refused_credentials_are_named_with_the_variables_to_check(s3, s3_requests):
    s3_requests.fault = lambda op, request: s3_error(request, 403, "InvalidAccessKeyId")

    checks, error = diagnosis()

    assert statuses(checks) == failed(["credentials"], then_skipped=S3_CHECKS[3:])
    assert checks["credentials"]["detail"] == "refused (InvalidAccessKeyId)"
    assert checks["credentials"]["fix"] == (
        "The service does not know this access key: check AWS_ACCESS_KEY_ID, and that "
        "AWS_S3_ENDPOINT_URL is the service that issued it."
    )
    assert error == f"1 of 9 checks failed for the {WHERE}."
    assert s3_requests.total == 1


def test_no_credentials_at_all_is_said_without_contacting_anything(settings, s3_requests):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    use_s3(settings, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_S3_ENDPOINT_URL=endpoint)

    checks, error = diagnosis()

    assert statuses(checks) == {
        **failed(["credentials"], then_skipped=S3_CHECKS[3:]),
        "endpoint": "skipped",
        "region": "skipped",
    }
    assert (checks["credentials"]["detail"], checks["credentials"]["fix"]) == (
        d.CREDENTIALS_MISSING,
        "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    )
    assert checks["endpoint"]["detail"] == d.NOT_CONTACTED
    assert error == f"1 of 9 checks failed for the {WHERE} at {endpoint}."
    assert s3_requests.total == 0


def test_a_bucket_that_does_not_exist(s3, settings, s3_requests):
    use_s3(settings, AWS_STORAGE_BUCKET_NAME="photosite-nowhere")

    checks, error = diagnosis()

    assert statuses(checks) == failed(["bucket"], then_skipped=S3_CHECKS[4:])
    assert checks["bucket"]["detail"] == "bucket 'photosite-nowhere' does not exist"
    assert checks["bucket"]["fix"] == "Create the bucket or fix AWS_STORAGE_BUCKET_NAME."
    assert error == "1 of 9 checks failed for the bucket 'photosite-nowhere'."
    assert s3_requests.total == 1


def test_a_bucket_in_another_region(s3, s3_requests):
    # What MinIO and a custom endpoint answer when the request is signed for another region
    # (botocore follows AWS's own redirects by itself).
    s3_requests.fault = lambda op, request: s3_error(request, 400, "AuthorizationHeaderMalformed")

    checks, _ = diagnosis()

    assert statuses(checks) == failed(["region"], then_skipped=S3_CHECKS[2:])
    assert (
        checks["region"]["detail"]
        == "the bucket is in another region (AuthorizationHeaderMalformed)"
    )
    assert checks["region"]["fix"] == "Set AWS_S3_REGION_NAME to the bucket's region."


def test_listing_denied_is_reported_and_the_write_checks_still_run(s3, s3_requests):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "ListObjectsV2" else None
    )

    checks, _ = diagnosis()

    assert statuses(checks) == failed(["list"])
    assert checks["list"]["detail"] == "listing albums/ was denied (AccessDenied)"
    assert checks["list"]["fix"] == d.FIX_LIST
    assert s3.object_keys() == []


def test_a_403_for_a_missing_key_is_a_missing_list_permission(s3, s3_requests):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403) if op == "HeadObject" and "check-missing" in request.url else None
    )

    checks, error = diagnosis()

    assert statuses(checks) == failed(["missing key"])
    assert checks["missing key"]["detail"] == "a HEAD of a missing key answered 403, not 404"
    assert checks["missing key"]["fix"] == (
        "Grant s3:ListBucket on the bucket: without it S3 answers 403 for a missing key, "
        "and the sync cannot tell a missing photo from a forbidden one."
    )
    assert error == f"1 of 9 checks failed for the {WHERE}."
    head = next(url for op, url in s3_requests.keys if op == "HeadObject")
    assert ".amazonaws.com/albums/photosite-check-missing-" in head


def test_a_denied_put_is_reported_and_the_rest_skipped(s3, s3_requests):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "PutObject" else None
    )

    checks, error = diagnosis()

    assert statuses(checks) == failed(["write"], then_skipped=["read back", "delete"])
    write = checks["write"]
    assert write["detail"].startswith("writing albums-check/probe-")
    assert write["detail"].endswith(".txt was denied (AccessDenied)")
    assert write["fix"] == "Grant s3:PutObject on albums-check/* (the sync needs it on albums/*)."
    assert checks["delete"]["detail"] == "not checked, as write failed"
    assert error == f"1 of 9 checks failed for the {WHERE}."
    # moto has stored the probe before the injected 403 reaches the client (a real 403
    # stores nothing), so only the requests tell that no cleanup was attempted.
    assert (s3_requests.counts["PutObject"], s3_requests.counts["DeleteObject"]) == (1, 0)


def test_a_denied_delete_says_which_probe_is_left_behind(s3, s3_requests):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "DeleteObject" else None
    )

    checks, _ = diagnosis()

    assert statuses(checks) == failed(["delete"])
    [probe] = [url.split(".com/")[1] for op, url in s3_requests.keys if op == "PutObject"]
    assert checks["delete"]["detail"] == (
        f"deleting {probe} was denied (AccessDenied); the probe is still there"
    )
    assert checks["delete"]["fix"] == (
        f"Grant s3:DeleteObject on albums-check/* (--prune needs it on albums/*), "
        f"then delete {probe}."
    )


def test_the_plain_output_gives_each_failure_its_fix_on_one_line(s3, s3_requests):
    s3_requests.fault = lambda op, request: (
        s3_error(request, 403, "AccessDenied") if op == "PutObject" else None
    )

    out, _ = check_storage()

    lines = out.splitlines()
    assert len(lines) == 9
    assert lines[6].startswith("FAIL write: writing albums-check/probe-")
    assert lines[6].endswith(
        "was denied (AccessDenied). Fix: Grant s3:PutObject on albums-check/* "
        "(the sync needs it on albums/*)."
    )
    assert lines[7] == "SKIP read back: not checked, as write failed."


# The local folder ----------------------------------------------------------------------


def test_a_local_folder_is_created_written_and_left_clean(local_bucket):
    out, error = check_storage()

    lines = out.splitlines()
    assert error is None
    assert lines[0] == f"OK   folder: local folder {local_bucket} was created."
    assert [line.split(":")[0] for line in lines[1:4]] == [
        "OK   write",
        "OK   read back",
        "OK   delete",
    ]
    assert lines[4] == f"All 4 checks passed for the local folder {local_bucket}."
    assert list(local_bucket.iterdir()) == []


def test_a_local_bucket_that_is_a_file(local_bucket):
    local_bucket.write_bytes(b"")

    checks, error = diagnosis()

    assert statuses(checks) == {
        "folder": "failed",
        "write": "skipped",
        "read back": "skipped",
        "delete": "skipped",
    }
    assert checks["folder"]["detail"] == f"local folder {local_bucket} is not a folder"
    assert checks["folder"]["fix"] == "Create the folder or fix ALBUMS_LOCAL_BUCKET."
    assert error == f"1 of 4 checks failed for the local folder {local_bucket}."


# Over real HTTP ------------------------------------------------------------------------


def test_over_http_against_a_real_server(moto_server, settings, s3_requests):
    use_s3(settings, AWS_S3_ENDPOINT_URL=moto_server)

    out, error = check_storage("--json")

    result = json.loads(out)
    assert error is None and result["ok"] is True
    assert result["where"] == f"{WHERE} at {moto_server}"
    assert [check["name"] for check in result["checks"]] == S3_CHECKS
    assert dict(s3_requests.counts) == {
        "ListObjectsV2": 1,
        "HeadObject": 2,
        "PutObject": 1,
        "DeleteObject": 1,
    }
    listing = s3_client(endpoint_url=moto_server).list_objects_v2(Bucket="photosite-test")
    assert "Contents" not in listing


def test_as_a_process_exit_codes_and_no_secret(moto_server, tmp_path):
    env = process_env(tmp_path, moto_server)

    def manage(*args):
        return run_manage(*args, env=env)

    good = manage("check_storage")
    env["AWS_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{closed_port()}"
    env["AWS_S3_MAX_ATTEMPTS"] = "1"
    down = manage("check_storage")

    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines()[-1] == f"All 9 checks passed for the {WHERE} at {moto_server}."
    assert down.returncode == 1
    assert down.stdout.startswith(f"FAIL endpoint: cannot reach {WHERE} at http://127.0.0.1:")
    assert "CommandError: 1 of 9 checks failed" in down.stderr
    assert "Traceback" not in down.stderr
    assert FAKE_SECRET not in good.stdout + good.stderr + down.stdout + down.stderr
