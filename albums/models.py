import secrets
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from . import conf
from .counts import COUNTS_BY_KIND


def validate_album_folder(value: str, *, root: Path | None = None) -> Path:
    """An album folder is a relative path that stays inside PHOTOS_ROOT, symlinks included.
    `root` is PHOTOS_ROOT resolved, when the caller has it; the folder's real path (links
    resolved) is returned, for a caller that walks it."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValidationError(
            "Enter a folder relative to PHOTOS_ROOT, without '..', e.g. 'Summer 2024'.",
            code="folder_escapes_root",
        )
    root = root or conf.photos_root()
    real = (root / value).resolve()
    if not real.is_relative_to(root):
        raise ValidationError(
            "This folder is a link that points outside PHOTOS_ROOT.",
            code="folder_escapes_root",
        )
    return real


class SyncStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCESS = "success", "Succeeded"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (another sync was running)"
    # A background sync that spent its task's time budget: what it did is recorded, and the
    # rest goes on in the run that follows it (SyncRun.follows).
    CONTINUED = "continued", "Continued in another run"


class AlbumQuerySet(models.QuerySet):
    """Whether an album is being synced now: its lease is held and not expired. The one
    definition of that condition (the lease takes an album only when it is free)."""

    def syncing(self, now=None):
        return self.filter(sync_lease_expires_at__gt=now or timezone.now())

    def free_to_sync(self, now=None):
        now = now or timezone.now()
        return self.filter(
            Q(sync_lease_expires_at__isnull=True) | Q(sync_lease_expires_at__lte=now)
        )


class Visibility(models.TextChoices):
    """Who sees an album on the site (albums.site)."""

    PRIVATE = "private", "Private: staff only"
    UNLISTED = "unlisted", "Unlisted: through a share link"
    PUBLIC = "public", "Public: listed on the site"


class Album(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True, allow_unicode=True)
    folder = models.CharField(
        max_length=1024,
        unique=True,
        validators=[validate_album_folder],
        help_text="Folder relative to PHOTOS_ROOT.",
    )
    sync_on_schedule = models.BooleanField(default=True, help_text="Synced by the scheduled task.")
    visibility = models.CharField(
        max_length=16,
        choices=Visibility.choices,
        default=Visibility.PRIVATE,
        help_text="Private: only staff who may view albums see it on the site. Unlisted: "
        "anyone with one of its share links. Public: anyone, listed on the site's front page.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Outcome of the last finished sync (dry runs excluded).
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_status = models.CharField(
        max_length=16, choices=SyncStatus.choices, blank=True, editable=False
    )

    # The streak of background syncs that failed or ended partial (albums.sync.records.runs), of which
    # the admins are emailed once, and again when a sync succeeds (albums.alerts).
    sync_failures_in_row = models.PositiveIntegerField(
        "failed syncs in a row",
        default=0,
        editable=False,
        help_text="Background syncs (schedule, admin, API) that failed or ended partial in a "
        "row; 0 once one succeeds.",
    )
    failure_alert_sent_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the admins were emailed about this streak of failures; empty when "
        "they were not (yet).",
    )

    # The per-album lock: a lease taken with one conditional UPDATE, renewed while a
    # sync runs and released at its end; a sync that died frees the album when its
    # lease expires. Works alike on SQLite and PostgreSQL (see albums.sync.records.lease).
    sync_lease_token = models.CharField(max_length=64, blank=True, editable=False)
    sync_lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AlbumQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("sync_album", "Can sync albums"),
            ("restore_album", "Can restore albums from the bucket"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("site-album", args=[self.slug])

    @property
    def path(self) -> Path:
        return conf.photos_root() / self.folder

    @property
    def is_syncing(self) -> bool:
        """AlbumQuerySet.syncing(), for an album already loaded."""
        return bool(self.sync_lease_expires_at and self.sync_lease_expires_at > timezone.now())


class Photo(models.Model):
    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="photos")
    # Sorted in binary (code point) order on every database: on PostgreSQL through the
    # "C" collation set by migration 0005, which an AlterField of this field must keep.
    path = models.CharField(max_length=1024, help_text="Relative to the album folder.")
    key = models.CharField(max_length=1024, help_text="Key of the object in the bucket.")
    size = models.BigIntegerField(help_text="Bytes on disk when last synced.")
    mtime_ns = models.BigIntegerField(help_text="Modification time on disk, in nanoseconds.")
    content_type = models.CharField(max_length=100, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True, help_text="From EXIF, if any.")
    uploaded_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty when the object was already in the bucket."
    )
    verified_at = models.DateTimeField(help_text="When the bucket last had this object.")
    excluded_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a sync found an exclusion covering it: not synced since, record and "
        "bucket copy kept. Empty when it is synced.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # What photosite knows the content by: the MD5 of the bytes uploaded (or verified) and the
    # object's ETag as the bucket reported it then. Empty for photos recorded before they were
    # kept; filled in when the photo is next uploaded or verified.
    md5 = models.CharField("MD5", max_length=32, blank=True, help_text="Of the bytes uploaded.")
    etag = models.CharField(
        "ETag", max_length=128, blank=True, help_text="The object's ETag when it was uploaded."
    )
    # The web renditions of this content (albums.renditions): the settings they were made
    # with, so a change of settings is seen; with a problem, they were tried and could not be.
    renditions = models.CharField(
        max_length=100,
        blank=True,
        help_text="The settings of the web renditions made of this content; empty: none yet.",
    )
    rendition_problem = models.CharField(
        "no rendition because",
        max_length=300,
        blank=True,
        help_text="Why this photo has no web rendition (it is backed up all the same).",
    )

    class Meta:
        ordering = ["album", "path"]
        constraints = [
            models.UniqueConstraint(fields=["album", "path"], name="unique_photo_path_per_album")
        ]
        # Moves are found by content: a new file's size first, then its MD5. For the admin at
        # a million photos (issue 16): the "not verified by the album's last sync" filter and
        # the date drill-down; searches use trigram indexes on PostgreSQL, made by migration
        # 0009, and the list's deep pages an (album, path) index that includes the id, made
        # by migration 0011 (neither expressible here for both databases).
        indexes = [
            models.Index(fields=["size", "md5"], name="photo_content"),
            models.Index(fields=["album", "verified_at"], name="photo_album_verified_idx"),
            models.Index(fields=["taken_at"], name="photo_taken_at_idx"),
            models.Index(fields=["album", "taken_at"], name="photo_album_taken_at_idx"),
            # The admin's "no web rendition" filter: few rows, found without a scan.
            models.Index(
                fields=["album", "path"],
                condition=~Q(rendition_problem=""),
                name="photo_no_rendition_idx",
            ),
            # The admin's "excluded by a pattern" filter, likewise (issue 28).
            models.Index(
                fields=["album", "path"],
                condition=Q(excluded_at__isnull=False),
                name="photo_excluded_idx",
            ),
            # "Uploaded by photosite" and "found already in the bucket": one of the two is
            # rare in most libraries (found in one photosite started, uploaded in one moved
            # from another tool), and the rare one must not be looked for among all photos.
            # With the id (on PostgreSQL) a count or a deep page is an index-only scan.
            models.Index(
                fields=["album", "path"],
                include=["id"],
                condition=Q(uploaded_at__isnull=True),
                name="photo_found_idx",
            ),
            models.Index(
                fields=["album", "path"],
                include=["id"],
                condition=Q(uploaded_at__isnull=False),
                name="photo_uploaded_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def modified_at(self):
        return datetime.fromtimestamp(self.mtime_ns / 1e9, tz=UTC)


class DepartedPhoto(models.Model):
    """A photo gone from its album's folder in a run that did not prune: its record is gone,
    its object stays in the bucket. What identifies its content is kept for
    ALBUMS_MOVE_WINDOW_DAYS, so that a later run of any album that finds the same content
    (the photo moved to another album, or renamed) copies that object inside the bucket
    instead of uploading it again. The object goes with the next prune of its album, as an
    untracked object, and this row with it."""

    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="departed")
    path = models.CharField(max_length=1024, help_text="Where it was, relative to the album.")
    key = models.CharField(max_length=1024, help_text="Its object in the bucket.")
    size = models.BigIntegerField()
    md5 = models.CharField("MD5", max_length=32)
    etag = models.CharField("ETag", max_length=128, blank=True)
    departed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Found by content, as a recorded photo gone from disk is (Photo's photo_content).
            models.Index(fields=["size", "md5"], name="departed_content"),
            models.Index(fields=["key"], name="departed_key"),
        ]

    def __str__(self) -> str:
        return self.path


def _count_columns() -> dict[str, models.Field]:
    """One column per count of every kind of run (albums.counts), described as the count is."""
    columns = {}
    for count in (spec for counts in COUNTS_BY_KIND.values() for spec in fields(counts)):
        column = (
            models.BigIntegerField
            if count.metadata["unit"] == "bytes"
            else models.PositiveIntegerField
        )
        columns[count.name] = column(
            default=0, verbose_name=count.metadata["label"], help_text=count.metadata["meaning"]
        )
    return columns


# The counts of a finished run, one column each, made from albums.counts so that a count named
# there is stored (after makemigrations), shown and reported without being named again.
RunCounts = type(
    "RunCounts",
    (models.Model,),
    {"__module__": __name__, "Meta": type("Meta", (), {"abstract": True}), **_count_columns()},
)


class SyncRun(RunCounts):
    """A run of any kind on one album: a sync, a verification or a restore."""

    class Kind(models.TextChoices):
        SYNC = "sync", "Sync"
        VERIFY = "verify", "Verify"
        RESTORE = "restore", "Restore"

    class Trigger(models.TextChoices):
        COMMAND = "command", "Command line"
        UNATTENDED = "unattended", "Command line, unattended (--alert)"
        ADMIN = "admin", "Admin"
        SCHEDULE = "schedule", "Schedule"
        API = "api", "API"
        TASK = "task", "Task"

    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SYNC)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    dry_run = models.BooleanField(default=False)
    prune = models.BooleanField(default=False)
    repair = models.BooleanField(default=False, help_text="A verification that repairs.")
    render_all = models.BooleanField(
        "render all missing",
        default=False,
        help_text="A sync that makes every missing web rendition (render_albums).",
    )
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, help_text="Why the run stopped, if it failed.")

    # Progress while running; the counts, when finished, are RunCounts' columns.
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0, help_text="Files the run could not handle.")
    errors = models.JSONField(default=list, blank=True)
    rendition_problems = models.JSONField(
        default=list,
        blank=True,
        help_text="Photos synced whose web renditions could not be made, each with the reason.",
    )
    diagnosis = models.JSONField(
        default=dict,
        blank=True,
        help_text="check_storage's findings when the bucket failed the run.",
    )
    # A sync that picks up where an earlier one stopped: one that spent its time budget
    # (continued), or one that was interrupted (killed, Ctrl-C, the task timeout).
    follows = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="followed_by",
        editable=False,
        help_text="The earlier run this one picks up from.",
    )
    resumed_photos = models.PositiveIntegerField(
        "photos not sent again",
        null=True,
        blank=True,
        editable=False,
        help_text="After an interrupted run: the photos it had sent and recorded, which this "
        "run found recorded and did not send again. Empty after a continued run.",
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["album", "-id"]),
            models.Index(fields=["started_at"], name="syncrun_started_at_idx"),  # date drill-down
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.album} #{self.pk}"

    @property
    def in_background(self) -> bool:
        """Run by a worker, queued by a door (the schedule, the admin, the API, `sync_albums
        --async`), or by the command told that nobody watches it (`sync_albums --alert`, from
        cron), rather than by the command here and now: the runs nobody watches, whose
        failures the admins are emailed about."""
        return self.trigger != self.Trigger.COMMAND or self.queued_at is not None

    @property
    def counts_class(self):
        return COUNTS_BY_KIND[self.kind]

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class ApiToken(models.Model):
    """A bearer token for scripts calling the HTTP API, acting as `user`.

    Only a SHA-256 of the token is stored: the token is shown once, when it is created
    (`manage.py create_api_token`). It is 256 random bits, so a plain hash is enough.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.user} ({self.name or 'token'} #{self.pk})"


SHARE_LINK_DAYS = 30


def new_share_token() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits, 32 characters


def in_share_link_days():
    return timezone.now() + timedelta(days=SHARE_LINK_DAYS)


class ShareLink(models.Model):
    """A link that shows one album to whoever has it (albums.site): /s/<token>/."""

    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="share_links")
    token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    label = models.CharField(max_length=100, blank=True, help_text="Who or what it is for.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        default=in_share_link_days,
        help_text=f"{SHARE_LINK_DAYS} days from now unless changed; empty: it never expires.",
    )
    password = models.CharField(
        max_length=128,
        blank=True,
        editable=False,
        help_text="A hash (Django's password hasher); empty: no password.",
    )
    allow_download = models.BooleanField(
        "allow downloading originals", default=False, help_text="The photos as they were synced."
    )
    show_details = models.BooleanField(
        "show file names and camera data",
        default=False,
        help_text="Off: a visitor sees the pictures and their dates, nothing else.",
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    view_count = models.PositiveIntegerField(default=0, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.label or f"Share link #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("site-share", args=[self.token])

    def gone(self, now=None) -> bool:
        """Revoked, or past its expiry: the site answers 410."""
        now = now or timezone.now()
        return self.revoked_at is not None or (
            self.expires_at is not None and self.expires_at <= now
        )
