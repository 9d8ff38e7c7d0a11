"""The bucket: the "photos" storage, a run's view of it, and what its errors mean.

Below the sync engine: nothing here imports `albums.sync`.
"""

from .backend import STORAGE_ALIAS, describe, key_problem, open_photo_storage
from .bucket import DeletesUnsupported, ObjectChanged, RemoteObject, StorageBucket
from .clients import forget_clients
from .errors import KeyRefused, ProblemKind, StorageProblem, classify_storage_error
from .s3 import S3Bucket, open_bucket
from .watch import EndpointSilent, EndpointWatch

__all__ = [
    "STORAGE_ALIAS",
    "DeletesUnsupported",
    "EndpointSilent",
    "EndpointWatch",
    "KeyRefused",
    "ObjectChanged",
    "ProblemKind",
    "RemoteObject",
    "S3Bucket",
    "StorageBucket",
    "StorageProblem",
    "classify_storage_error",
    "describe",
    "forget_clients",
    "key_problem",
    "open_bucket",
    "open_photo_storage",
]
