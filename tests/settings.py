"""Test settings: the production settings on embedded defaults, isolated from this machine.

The environment is fixed before photosite.settings reads it, so a developer's shell (a real
bucket, a profile in ~/.aws) can never leak into a test run.
"""

import atexit
import os
import shutil
import tempfile

# Scratch folders of this test run, removed when it ends.
SCRATCH = tempfile.mkdtemp(prefix="photosite-tests-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)

for name in list(os.environ):
    if name.startswith(("AWS_", "ALBUMS_", "Q_")) and name != "AWS_DEFAULT_REGION":
        del os.environ[name]
os.environ.pop("REDIS_URL", None)  # the tests' broker is the ORM (and sync mode)
for name in list(os.environ):  # no email to a developer's real admins, whatever the shell says
    if name.startswith("DJANGO_EMAIL_") or name in (
        "DJANGO_ADMINS", "DJANGO_SERVER_EMAIL", "DJANGO_DEFAULT_FROM_EMAIL", "PHOTOSITE_URL"
    ):  # fmt: skip
        del os.environ[name]
os.environ.update(
    {
        "DJANGO_SECRET_KEY": "tests-only-secret-key",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DJANGO_HTTPS": "0",  # the test client and live server speak plain HTTP
        "DJANGO_STATIC_ROOT": os.path.join(SCRATCH, "static"),
        "ALBUMS_THUMBNAIL_DIR": os.path.join(SCRATCH, "thumbnails"),
    }
)

from photosite.settings import *  # noqa: E402, F403

# The manifest storage needs `collectstatic` first; tests render pages without it. The
# production storage is tested through HTTP by tests/test_serve.py.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
os.makedirs(STATIC_ROOT, exist_ok=True)  # noqa: F405

PHOTOS_ROOT = os.path.join(SCRATCH, "photos")
os.makedirs(PHOTOS_ROOT)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# django-q2 reads its settings once, at import: run tasks in the caller for tests.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405

# Test photos are written moments before they are synced; the settle time has its own tests.
ALBUMS_SETTLE_SECONDS = 0

# Web renditions have their own tests (tests/services/test_renditions.py), which turn them on;
# elsewhere a test's request and count figures are those of the sync alone.
ALBUMS_RENDITIONS = False
