"""The floor: what the bucket allows with no checks at all.

`upload`: every file sent once, on a thread pool, streamed from disk (put_object; files over
the multipart threshold through one shared s3transfer manager). `list`: one paginated
listing of the prefix, 1,000 keys a request, and nothing else. `download` (issue 14's
restore floor): one listing of the prefix, then every object written under FOLDER on the
same pool (get_object streamed to the file; large ones through the shared manager), with
no check, no fsync, no temporary name. `md5` (issue 13's verify floor): every file of FOLDER
read and MD5'd once (hashlib.file_digest), on one thread, and no request at all. `copy`
(issue 13's rename): one listing of the prefix, then every object whose top folder has no
SUFFIX copied (CopyObject) to the same path under `<top folder>SUFFIX`, on the pool: what
moving a renamed folder's photos inside the bucket costs, with nothing to decide.

Run by bench/run.py and bench/scenarios.py as a whole process:
floor.py upload|list|download|md5|copy FOLDER BUCKET PREFIX --endpoint URL [--suffix S]
"""

import argparse
import hashlib
import mimetypes
import os
from concurrent.futures import ThreadPoolExecutor

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # boto3's and awscli's default
PART_CONCURRENCY = 4


# boto3 is imported where it is used: the md5 floor must not pay for its import.


def client_for(endpoint: str, workers: int):
    import boto3
    import botocore.session
    from botocore.config import Config

    config = Config(
        max_pool_connections=workers + PART_CONCURRENCY,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = botocore.session.get_session()
    # Dates stay as the text the server sent, as photosite's own client keeps them
    # (albums/storage/clients.py): parsing every LastModified with dateutil costs botocore
    # about 0.1 s of CPU a 1,000-key page, which the floor must not count.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return boto3.Session(botocore_session=session).client(
        "s3", endpoint_url=endpoint, config=config
    )


def shared_manager(client):
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=4)
    return create_transfer_manager(client, config)


def upload_all(client, folder: str, bucket: str, prefix: str, workers: int) -> int:
    manager = shared_manager(client)

    def send(path: str) -> None:
        key = prefix + os.path.relpath(path, folder)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if os.path.getsize(path) >= MULTIPART_THRESHOLD:
            extra = {"ContentType": content_type}
            manager.upload(path, bucket, key, extra_args=extra).result()
            return
        with open(path, "rb") as body:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    paths = [
        os.path.join(directory, name) for directory, _, files in os.walk(folder) for name in files
    ]
    with manager, ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(send, paths):
            pass
    return len(paths)


def list_all(client, bucket: str, prefix: str) -> int:
    return len(listing(client, bucket, prefix))


def listing(client, bucket: str, prefix: str) -> list[dict]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj for page in pages for obj in page.get("Contents", ())]


def download_all(client, folder: str, bucket: str, prefix: str, workers: int) -> int:
    manager = shared_manager(client)

    def fetch(obj: dict) -> None:
        path = os.path.join(folder, obj["Key"][len(prefix) :])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if obj["Size"] >= MULTIPART_THRESHOLD:
            manager.download(bucket, obj["Key"], path).result()
            return
        body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
        with open(path, "wb") as file:
            for chunk in body.iter_chunks(1024 * 1024):
                file.write(chunk)

    objects = listing(client, bucket, prefix)
    with manager, ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fetch, objects):
            pass
    return len(objects)


def copy_all(client, bucket: str, prefix: str, suffix: str, workers: int) -> int:
    def renamed(key: str) -> str:
        top, _, rest = key[len(prefix) :].partition("/")
        return f"{prefix}{top}{suffix}/{rest}"

    def copy(key: str) -> None:
        source = {"Bucket": bucket, "Key": key}
        client.copy_object(CopySource=source, Bucket=bucket, Key=renamed(key))

    keys = [
        obj["Key"]
        for obj in listing(client, bucket, prefix)
        if not obj["Key"][len(prefix) :].partition("/")[0].endswith(suffix)
    ]
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(copy, keys):
            pass
    return len(keys)


def md5_all(folder: str) -> int:
    """Read and hash every file once: what any check of the files' content must pay."""
    count = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(directory, name), "rb") as file:
                hashlib.file_digest(file, "md5")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["upload", "list", "download", "md5", "copy"])
    parser.add_argument("folder")
    parser.add_argument("bucket")
    parser.add_argument("prefix")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--suffix", default="-renamed", help="copy: added to the top folder")
    args = parser.parse_args()
    if args.mode == "md5":  # no client: the floor of a check is its reads alone
        print(f"md5: {md5_all(args.folder)} files")
        return
    client = client_for(args.endpoint, args.workers)
    if args.mode == "upload":
        count = upload_all(client, args.folder, args.bucket, args.prefix, args.workers)
    elif args.mode == "download":
        count = download_all(client, args.folder, args.bucket, args.prefix, args.workers)
    elif args.mode == "copy":
        count = copy_all(client, args.bucket, args.prefix, args.suffix, args.workers)
    else:
        count = list_all(client, args.bucket, args.prefix)
    print(f"{args.mode}: {count} objects")


if __name__ == "__main__":
    main()
