"""Settings for photosite, read from the environment (see README.md, "Configuration")."""

import os
from pathlib import Path

import dj_database_url
from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

from photosite import env

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env.flag("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it in the environment, or set "
            "DJANGO_DEBUG=1 for local development (scripts/demo makes one for you)."
        )
    SECRET_KEY = "django-insecure-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]
# HTTPS hardening, on by default outside DEBUG; DJANGO_HTTPS=0 serves plain HTTP (the demo
# on 127.0.0.1). Behind a TLS-terminating proxy, set DJANGO_BEHIND_PROXY=1.
HTTPS = env.flag("DJANGO_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.integer("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
if env.flag("DJANGO_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The health checks answer over plain HTTP too: a load balancer or monitor may poll the
# server directly, behind the TLS proxy. They are GET-only and show nothing secret.
SECURE_REDIRECT_EXEMPT = [r"^api/health/(live/)?$"]
X_FRAME_OPTIONS = "DENY"

CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]

# Photo's partial indexes carry the id for PostgreSQL's index-only scans (issue 28); SQLite
# builds them without it, as intended, and would otherwise say so on every command.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

INSTALLED_APPS = [
    # The admin's modules are loaded by photosite/urls.py, when a web request needs them,
    # not by every management command (sync_albums starts faster without them).
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves static files under runserver too, as in production (scripts/demo).
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "albums",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic), compressed and cached, without DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "photosite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "photosite.wsgi.application"

# Databases: SQLite in the project folder unless DATABASE_URL says otherwise.
try:
    DATABASES = {
        "default": dj_database_url.config(
            default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60
        )
    }
except ValueError as exc:  # dj-database-url names the unknown scheme
    raise ImproperlyConfigured(f"DATABASE_URL is not valid: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Worker threads never write, but a web request, a qcluster and a sync may share
    # the file: IMMEDIATE transactions and a busy timeout avoid "database is locked"
    # on read-then-write transactions. WAL is switched on in albums.apps.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.time_zone("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Filled by `manage.py collectstatic` (scripts/serve and scripts/demo run it); WhiteNoise
# serves it with hashed names, compressed, cached for a year.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "var" / "static")).expanduser()

# Photos ------------------------------------------------------------------------------

PHOTOS_ROOT = Path(os.environ.get("PHOTOS_ROOT", BASE_DIR / "photos")).expanduser()

# Read through albums.conf, which validates them when a sync starts.
ALBUMS_SYNC_BATCH_SIZE = os.environ.get("ALBUMS_SYNC_BATCH_SIZE", "10")
ALBUMS_SYNC_WORKERS = os.environ.get("ALBUMS_SYNC_WORKERS", "64")
ALBUMS_KEY_PREFIX = os.environ.get("ALBUMS_KEY_PREFIX", "albums")
ALBUMS_PHOTO_EXTENSIONS = os.environ.get("ALBUMS_PHOTO_EXTENSIONS", "")  # "" = defaults
ALBUMS_EXCLUDE = os.environ.get("ALBUMS_EXCLUDE", "")  # gitignore-style, comma-separated
ALBUMS_SYNC_LEASE_SECONDS = os.environ.get("ALBUMS_SYNC_LEASE_SECONDS", "300")
ALBUMS_SETTLE_SECONDS = os.environ.get("ALBUMS_SETTLE_SECONDS", "5")
ALBUMS_MAX_DELETE = os.environ.get("ALBUMS_MAX_DELETE", "1000")
ALBUMS_MOVE_WINDOW_DAYS = os.environ.get("ALBUMS_MOVE_WINDOW_DAYS", "90")


def photos_storage(environ) -> dict:
    """The "photos" STORAGES entry: S3 (or any S3-compatible service) when
    AWS_STORAGE_BUCKET_NAME is set, otherwise a local folder, so the app runs with no cloud.
    """
    bucket = env.bucket("AWS_STORAGE_BUCKET_NAME", environ=environ)
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": Path(environ.get("ALBUMS_LOCAL_BUCKET", BASE_DIR / "var" / "bucket")),
                "base_url": None,
                "allow_overwrite": True,
            },
        }
    endpoint = env.url(
        "AWS_S3_ENDPOINT_URL",
        schemes=("https", "http"),
        example="https://s3.eu-central-1.wasabisys.com or http://127.0.0.1:9000",
        environ=environ,
    )
    # Since botocore 1.36 every PUT carries a CRC checksum that many S3-compatible
    # services reject (B2, R2, older MinIO, some Ceph): only AWS itself gets them by
    # default; AWS_S3_REQUEST_CHECKSUMS=1 turns them back on for another endpoint.
    checksums = (
        "when_supported"
        if endpoint is None or env.flag("AWS_S3_REQUEST_CHECKSUMS", environ=environ)
        else "when_required"
    )
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": env.region("AWS_S3_REGION_NAME", environ=environ),
            "access_key": environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": environ.get("AWS_SECRET_ACCESS_KEY") or None,
            "file_overwrite": True,  # never a renamed second copy (see albums.storage)
            "default_acl": None,
            "querystring_auth": True,
            "client_config": Config(
                s3={
                    "addressing_style": env.choice(
                        "AWS_S3_ADDRESSING_STYLE",
                        "auto",
                        ("auto", "virtual", "path"),
                        environ=environ,
                    )
                },
                signature_version="s3v4",
                # Each socket operation's limit, not a request's: a slow upload that keeps
                # going is never cut off. An endpoint that stops answering fails the run in
                # about the read timeout (albums.storage.watch stops the retries once it has
                # heard nothing for a while); throttling and 5xx are retried with backoff.
                connect_timeout=env.integer(
                    "AWS_S3_CONNECT_TIMEOUT", 3, minimum=1, environ=environ
                ),
                read_timeout=env.integer("AWS_S3_READ_TIMEOUT", 15, minimum=1, environ=environ),
                retries={
                    "mode": "standard",
                    "total_max_attempts": env.integer(
                        "AWS_S3_MAX_ATTEMPTS", 3, minimum=1, environ=environ
                    ),
                },
                request_checksum_calculation=checksums,
                response_checksum_validation=checksums,
            ),
        },
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    "photos": photos_storage(os.environ),
}

# Email: the admins are told when background syncs fail, and when they recover (albums.alerts),
# and Django mails them its report of a server error (500). Nothing is sent without ADMINS.


def email_settings(environ) -> dict:
    """ADMINS and Django's EMAIL_* settings from DJANGO_ADMINS and DJANGO_EMAIL_*, each
    checked as it is read."""
    use_tls = env.flag("DJANGO_EMAIL_USE_TLS", environ=environ)  # STARTTLS, usually port 587
    use_ssl = env.flag("DJANGO_EMAIL_USE_SSL", environ=environ)  # TLS at once, usually 465
    if use_tls and use_ssl:
        raise ImproperlyConfigured(
            "DJANGO_EMAIL_USE_TLS and DJANGO_EMAIL_USE_SSL cannot both be on: set "
            "DJANGO_EMAIL_USE_TLS=1 for STARTTLS (usually port 587) or DJANGO_EMAIL_USE_SSL=1 "
            "for TLS from the start (usually port 465)."
        )
    user = environ.get("DJANGO_EMAIL_HOST_USER", "")
    password = environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
    if bool(user) != bool(password):
        # Django logs in only with both: one alone would send without logging in, and fail.
        raise ImproperlyConfigured(
            "DJANGO_EMAIL_HOST_USER and DJANGO_EMAIL_HOST_PASSWORD must be set together (the "
            "mail server's login, such as alerts@example.org and its password), or neither."
        )
    from_email = env.email_address(
        "DJANGO_DEFAULT_FROM_EMAIL", "photosite@localhost", environ=environ
    )
    return {
        "ADMINS": env.email_addresses("DJANGO_ADMINS", environ=environ),
        "EMAIL_HOST": env.host_name(
            "DJANGO_EMAIL_HOST", "localhost", example="smtp.example.org", environ=environ
        ),
        "EMAIL_PORT": env.integer(
            "DJANGO_EMAIL_PORT",
            465 if use_ssl else 587 if use_tls else 25,
            minimum=1,
            maximum=65535,
            environ=environ,
        ),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
        "EMAIL_HOST_USER": user,
        "EMAIL_HOST_PASSWORD": password,
        # Django's default is to wait for ever: a mail server that never answers would hold
        # a worker.
        "EMAIL_TIMEOUT": env.integer("DJANGO_EMAIL_TIMEOUT", 10, minimum=1, environ=environ),
        "DEFAULT_FROM_EMAIL": from_email,
        # The sender of the emails to the admins.
        "SERVER_EMAIL": env.email_address("DJANGO_SERVER_EMAIL", from_email, environ=environ),
    }


globals().update(email_settings(os.environ))
EMAIL_SUBJECT_PREFIX = "[photosite] "
# Django's 500 report lists the settings, hiding those named like secrets; this also hides a
# URL's password wherever it is (REDIS_URL, Q_CLUSTER["redis"]).
DEFAULT_EXCEPTION_REPORTER_FILTER = "photosite.error_reports.ExceptionReporterFilter"
# The site's address, for links in the emails (to a run in the admin).
PHOTOSITE_URL = env.url(
    "PHOTOSITE_URL", schemes=("https", "http"), example="https://photos.example.org"
)
# Albums: ALBUMS_ALERTS=0 turns the emails about failed syncs off.
ALBUMS_ALERTS = env.flag("ALBUMS_ALERTS", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "albums": {"handlers": ["console"], "level": env.log_level("ALBUMS_LOG_LEVEL", "WARNING")},
    },
}

# Background work: django-q2. The ORM broker is the embedded default (nothing else to run);
# REDIS_URL switches to Redis. `timeout` stops a task (SIGALRM, then the guard kills the
# worker); a sync stops itself before it (ALBUMS_TASK_BUDGET_SECONDS) and goes on in a task of
# its own, so `timeout` need only outlast a stall. `retry` must exceed `timeout` (django-q2
# re-delivers a task still unacknowledged after `retry` seconds): a sync is never started twice.
Q_TIMEOUT = env.integer("Q_TIMEOUT", 6 * 3600, minimum=1)
Q_RETRY = env.integer("Q_RETRY", Q_TIMEOUT + 600, minimum=1)
if Q_RETRY <= Q_TIMEOUT:
    raise ImproperlyConfigured(
        f"Q_RETRY ({Q_RETRY}) must be greater than Q_TIMEOUT ({Q_TIMEOUT}), or a running "
        "sync would be delivered again while it runs."
    )
# A background sync stops cleanly after this many seconds and queues the rest as a run of its
# own, so that Q_TIMEOUT bounds a stall, never the work (albums.conf.task_budget_seconds).
ALBUMS_TASK_BUDGET_SECONDS = os.environ.get("ALBUMS_TASK_BUDGET_SECONDS", "")  # "": 3/4 of it
Q_CLUSTER = {
    # The queue's name: installs sharing one Redis (or one database) need names of their own.
    "name": os.environ.get("Q_CLUSTER_NAME") or "photosite",
    "workers": env.integer("Q_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    # One delivery: a failed sync is recorded on its run and the next scheduled run
    # tries again; a re-delivered task finds its run no longer queued and does nothing.
    "max_attempts": 1,
    "catch_up": False,  # after downtime, one scheduled run, not one per missed slot
    "save_limit": 250,
}
REDIS_URL = env.url(
    "REDIS_URL",
    schemes=("redis", "rediss", "unix"),
    example="redis://localhost:6379/0",
)
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL  # django-q2 passes a string to redis.from_url()
else:
    Q_CLUSTER["orm"] = "default"
    # Every cluster publishes its heartbeat (django_q Stat) through this cache, which the
    # admin, the API and the health check read (albums.sync.usecases.queue.worker_seen). It is in
    # the database, so a web server sees the workers of every machine (issue 16). (With
    # Redis the heartbeat goes to Redis.)
    Q_CLUSTER["cache"] = "django_q"

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Its table is created by `migrate` (albums.apps.create_cache_tables).
    "django_q": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "photosite_cache",
    },
}

# Scheduled syncs (albums with "sync on schedule") every this many minutes; read through
# albums.conf. It sets the schedule when it is created: edit it later in the admin.
ALBUMS_SYNC_INTERVAL_MINUTES = os.environ.get("ALBUMS_SYNC_INTERVAL_MINUTES", "60")
# Web renditions of every photo, made by the syncs and kept in the bucket under
# <ALBUMS_KEY_PREFIX>-renditions/ (albums.renditions); read through albums.conf.
ALBUMS_RENDITIONS = env.flag("ALBUMS_RENDITIONS", default=True)
ALBUMS_RENDITION_SIZES = os.environ.get("ALBUMS_RENDITION_SIZES", "400,2048")
ALBUMS_RENDITION_FORMAT = os.environ.get("ALBUMS_RENDITION_FORMAT", "webp")
ALBUMS_RENDITION_QUALITY = os.environ.get("ALBUMS_RENDITION_QUALITY", "")  # the format's own
ALBUMS_RENDITIONS_PER_RUN = os.environ.get("ALBUMS_RENDITIONS_PER_RUN", "200")
# A public or CDN base URL for the renditions' keys; empty: presigned URLs.
ALBUMS_MEDIA_URL = os.environ.get("ALBUMS_MEDIA_URL", "")
# Thumbnails of photos without renditions, made from the local files and cached here.
ALBUMS_THUMBNAIL_DIR = Path(
    os.environ.get("ALBUMS_THUMBNAIL_DIR", BASE_DIR / "var" / "thumbnails")
).expanduser()
