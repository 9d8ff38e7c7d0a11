"""The floor: what the bucket allows with no checks at all.

`upload`: every file sent once, on a thread pool, streamed from disk (put_object; files over
the multipart threshold through one shared s3transfer manager). `list`: one paginated
listing of the prefix, 1,000 keys a request, and nothing else.

Run by bench/run.py as a whole process: floor.py upload|list FOLDER BUCKET PREFIX --endpoint URL
"""

import argparse
import mimetypes
import os
from concurrent.futures import ThreadPoolExecutor

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # boto3's and awscli's default
PART_CONCURRENCY = 4


def client_for(endpoint: str, workers: int):
    config = Config(
        max_pool_connections=workers + PART_CONCURRENCY,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def upload_all(client, folder: str, bucket: str, prefix: str, workers: int) -> int:
    manager = create_transfer_manager(
        client, TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=4)
    )

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
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(page.get("Contents", ())) for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["upload", "list"])
    parser.add_argument("folder")
    parser.add_argument("bucket")
    parser.add_argument("prefix")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()
    client = client_for(args.endpoint, args.workers)
    if args.mode == "upload":
        count = upload_all(client, args.folder, args.bucket, args.prefix, args.workers)
    else:
        count = list_all(client, args.bucket, args.prefix)
    print(f"{args.mode}: {count} objects")


if __name__ == "__main__":
    main()
