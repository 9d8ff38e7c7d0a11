"""The seed's design, as a baseline: a HEAD per photo in concurrent batches of 10, and an
upload (through s3transfer, as django-storages' save() does) for each one missing.

Run by bench/run.py as a whole process: seed_sync.py FOLDER BUCKET PREFIX --endpoint URL
"""

import argparse
import mimetypes
import os
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

BATCH = 10


def photo_paths(folder: str) -> list[str]:
    found = []
    for directory, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        found += [os.path.join(directory, name) for name in files if not name.startswith(".")]
    return sorted(found)


def check_and_upload(client, bucket: str, key: str, path: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"404", "NoSuchKey", "NotFound"}:
            raise
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    client.upload_file(path, bucket, key, ExtraArgs={"ContentType": content_type})
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("bucket")
    parser.add_argument("prefix")
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.client("s3", endpoint_url=args.endpoint, config=config)
    paths = photo_paths(args.folder)
    uploaded = 0
    with ThreadPoolExecutor(BATCH) as pool:
        for start in range(0, len(paths), BATCH):
            batch = paths[start : start + BATCH]
            keys = [args.prefix + os.path.relpath(p, args.folder) for p in batch]
            # Each batch waits for its slowest file before the next starts, as the seed did.
            uploaded += sum(
                pool.map(
                    lambda kp: check_and_upload(client, args.bucket, *kp),
                    zip(keys, batch, strict=True),
                )
            )
    print(f"{len(paths)} photos, {uploaded} uploaded")


if __name__ == "__main__":
    main()
