"""The admin: album state at a glance, a sync in one click, runs and photos to inspect.

Custom views are registered through get_urls(), wrapped by admin_site.admin_view (staff,
CSRF, never-cache) and check the model permission themselves; they queue work through
albums.sync.queue_sync and contain none of the sync itself.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from ..counts import COUNTS_BY_KIND
from ..exceptions import QueueUnavailable
from ..models import Album, ApiToken, Photo, SyncRun, SyncStatus
from ..previews import NoPreview, bucket_url, has_preview, thumbnail
from ..sync import queue_sync, queue_syncs, run_as_dict, worker_seen
from ..sync.records.runs import ACTIVE
from .large_lists import (
    EstimatedCountPaginator,
    RelatedWithRowsFilter,
    search_by_each_term,
    searched_once,
    with_indexed_dates,
)

SYNC_QUEUED = "Sync of “{album}” queued as {run}."
DRY_RUN_QUEUED = "Dry run of “{album}” queued as {run}."
VERIFY_QUEUED = "Verification of “{album}” queued as {run}."
RESTORE_QUEUED = "Restore of the missing photos of “{album}” queued as {run}."
ALREADY_RUNNING = "“{album}” is being synced right now: see {run}."
NO_WORKER = (
    "No background worker has been seen recently, so the run will wait in the queue: "
    "start one with “python manage.py qcluster”."
)
STATUS_ICONS = {
    SyncStatus.SUCCESS: "icon-yes.svg",
    SyncStatus.PARTIAL: "icon-alert.svg",
    SyncStatus.FAILED: "icon-no.svg",
    SyncStatus.SKIPPED: "icon-alert.svg",
}
RECENT_RUNS = 10
RUN_WHEN_FIELDS = ["trigger", "queued_at", "started_at", "finished_at", "took"]
RUN_OPTION_FIELDS = {"sync": ["dry_run", "prune"], "verify": ["repair"], "restore": ["dry_run"]}
# Every count of a run's kind, photos first, then its bytes as a size ("bytes" below).
RUN_COUNT_FIELDS = {
    kind: [*(name for name, _, _, unit in counts.specs() if unit == "photos"), "failed", "bytes"]
    for kind, counts in COUNTS_BY_KIND.items()
}


def status_badge(status: str, label: str):
    if status not in STATUS_ICONS:  # queued or running: the text says it all
        return label
    icon = static("admin/img/" + STATUS_ICONS[status])
    return format_html('<img src="{}" alt="" style="vertical-align: text-bottom"> {}', icon, label)


def run_link(run: SyncRun):
    return format_html(
        '<a href="{}">run #{}</a>', reverse("admin:albums_syncrun_change", args=[run.pk]), run.pk
    )


def _last_run(value):
    """`value` (a field name or expression) on the album's latest finished real run."""
    runs = SyncRun.objects.filter(
        album=OuterRef("pk"), dry_run=False, finished_at__isnull=False
    ).order_by("-id")
    return Subquery(runs.values(value=F(value) if isinstance(value, str) else value)[:1])


class SyncStateFilter(admin.SimpleListFilter):
    title = "sync state"
    parameter_name = "sync_state"

    def lookups(self, request, model_admin):
        return [
            ("never", "Never synced"),
            ("busy", "Syncing now"),
            ("problem", "Last sync had problems"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "never":
                return queryset.filter(last_synced_at__isnull=True)
            case "busy":
                return queryset.syncing()
            case "problem":
                return queryset.exclude(last_sync_status__in=["", SyncStatus.SUCCESS])
        return queryset


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin):
    list_display = ["name", "folder", "photo_count", "last_sync", "sync_on_schedule"]
    list_filter = [
        SyncStateFilter,
        "sync_on_schedule",
        "last_sync_status",
        ("last_synced_at", admin.DateFieldListFilter),
    ]
    search_fields = ["name", "slug", "folder"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "last_synced_at",
        "last_sync_status",
        "sync_failures_in_row",
        "failure_alert_sent_at",
        "recent_runs",
    ]
    fields = ["name", "slug", "folder", "sync_on_schedule", *readonly_fields]
    actions = ["sync_selected", "restore_selected"]
    list_per_page = 50

    def get_queryset(self, request):
        photos = (
            Photo.objects.filter(album=OuterRef("pk"))
            .order_by()
            .values("album")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                photo_total=Coalesce(Subquery(photos), 0),
                last_run_id=_last_run("pk"),
                last_run_sent=_last_run(F("uploaded") + F("reuploaded")),
                last_run_failed=_last_run("failed"),
                last_run_removed=_last_run("removed"),
                last_run_excluded=_last_run("excluded"),
            )
        )

    def get_urls(self):
        sync, restore = (self.admin_site.admin_view(v) for v in (self.sync_view, self.restore_view))
        return [
            path("<path:object_id>/sync/", sync, name="albums_album_sync"),
            path("<path:object_id>/restore/", restore, name="albums_album_restore"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_sync": self.has_sync_permission(request),
            "sync_url": reverse("admin:albums_album_sync", args=[object_id]),
            "can_restore": self.has_restore_permission(request),
            "restore_url": reverse("admin:albums_album_restore", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("albums.sync_album")

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("albums.restore_album")

    # Columns and fields

    # Not sortable: sorting 1,000 albums by photos counts a million rows (issue 16).
    @admin.display(description="Photos")
    def photo_count(self, album: Album):
        url = reverse("admin:albums_photo_changelist") + f"?album__id__exact={album.pk}"
        return format_html('<a href="{}">{}</a>', url, album.photo_total)

    @admin.display(description="Last sync", ordering="last_synced_at")
    def last_sync(self, album: Album):
        if album.last_synced_at is None:
            return "Never"
        did = f"{album.last_run_sent or 0} sent, {album.last_run_failed or 0} failed"
        if album.last_run_removed:
            did += f", {album.last_run_removed} removed"
        if album.last_run_excluded:
            did += f", {album.last_run_excluded} excluded"
        return format_html(
            '{} ago · <a href="{}">{}</a> · {}',
            timesince(album.last_synced_at),
            reverse("admin:albums_syncrun_change", args=[album.last_run_id])
            if album.last_run_id
            else "#",
            status_badge(album.last_sync_status, album.get_last_sync_status_display()),
            did,
        )

    @admin.display(description="Recent runs")
    def recent_runs(self, album: Album):
        runs = album.sync_runs.all()[:RECENT_RUNS]
        if not runs:
            return "None yet."
        rows = format_html_join(
            "",
            "<li>{} · {} · {} · {}</li>",
            (
                (
                    run_link(run),
                    status_badge(run.status, run.get_status_display()),
                    run.get_trigger_display() + (" (dry run)" if run.dry_run else ""),
                    timesince(run.queued_at or run.started_at) + " ago"
                    if (run.queued_at or run.started_at)
                    else "",
                )
                for run in runs
            ),
        )
        return format_html('<ul style="margin-left: 0; padding-left: 0">{}</ul>', rows)

    # Actions and views

    @admin.action(permissions=["sync"], description="Sync selected albums")
    def sync_selected(self, request, queryset):
        try:
            runs = queue_syncs(albums=queryset, trigger=SyncRun.Trigger.ADMIN)
        except QueueUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            format_html(
                "{} {}",
                ngettext(
                    "Queued a sync of %(count)d album:",
                    "Queued syncs of %(count)d albums:",
                    len(runs),
                )
                % {"count": len(runs)},
                format_html_join(", ", "{}", ((run_link(run),) for run in runs)),
            ),
            messages.SUCCESS,
        )
        self._warn_if_no_worker(request)

    @admin.action(permissions=["restore"], description="Restore missing photos")
    def restore_selected(self, request, queryset):
        runs = queue_syncs(
            albums=queryset, trigger=SyncRun.Trigger.ADMIN, kind=SyncRun.Kind.RESTORE
        )
        self.message_user(
            request,
            format_html(
                "{} {}",
                ngettext(
                    "Queued a restore of %(count)d album:",
                    "Queued restores of %(count)d albums:",
                    len(runs),
                )
                % {"count": len(runs)},
                format_html_join(", ", "{}", ((run_link(run),) for run in runs)),
            ),
            messages.SUCCESS,
        )
        self._warn_if_no_worker(request)

    def restore_view(self, request, object_id):
        """POST only: queue a restore of the album's missing photos (albums.restore_album)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_restore_permission(request):
            raise PermissionDenied
        album = self.get_object(request, unquote(object_id))
        if album is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        run = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN, kind=SyncRun.Kind.RESTORE)
        text = ALREADY_RUNNING if run.status == SyncStatus.RUNNING else RESTORE_QUEUED
        self.message_user(request, format_html(text, album=album.name, run=run_link(run)))
        self._warn_if_no_worker(request)
        return redirect("admin:albums_album_change", album.pk)

    def sync_view(self, request, object_id):
        """POST only: queue a sync of one album (with `dry_run` in the form, a dry run; with
        `verify`, a verification)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_sync_permission(request):
            raise PermissionDenied
        album = self.get_object(request, unquote(object_id))
        if album is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        dry_run, verify = "dry_run" in request.POST, "verify" in request.POST
        kind = SyncRun.Kind.VERIFY if verify else SyncRun.Kind.SYNC
        try:
            run = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN, dry_run=dry_run, kind=kind)
        except QueueUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect("admin:albums_album_change", album.pk)
        # queue_sync hands back the running sync rather than queue a second one.
        if run.status == SyncStatus.RUNNING:
            text = ALREADY_RUNNING
        else:
            text = VERIFY_QUEUED if verify else DRY_RUN_QUEUED if dry_run else SYNC_QUEUED
        self.message_user(request, format_html(text, album=album.name, run=run_link(run)))
        self._warn_if_no_worker(request)
        return redirect("admin:albums_album_change", album.pk)

    # Helpers

    def _warn_if_no_worker(self, request):
        if not worker_seen():
            self.message_user(request, NO_WORKER, messages.WARNING)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = [
        "__str__", "album", "status_label", "trigger", "dry_run", "started_at", "took",
        "progress", "uploaded", "reuploaded", "failed", "bytes",
    ]  # fmt: skip
    list_display_links = ["__str__"]
    list_filter = ["kind", "status", "trigger", "dry_run", "prune"]
    list_select_related = ["album"]
    search_fields = ["album__name", "album__slug", "message"]
    date_hierarchy = "started_at"
    show_full_result_count = False  # runs pile up: one per album per interval
    paginator = EstimatedCountPaginator
    fieldsets = [(None, {"fields": ["album", "kind", "status_label", "progress", "message"]})]

    def get_urls(self):
        view = self.admin_site.admin_view(self.progress_view)
        return [
            path("<path:object_id>/progress/", view, name="albums_syncrun_progress"),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return with_indexed_dates(super().get_queryset(request))

    def get_fieldsets(self, request, obj=None):
        kind = obj.kind if obj is not None else SyncRun.Kind.SYNC
        files = "Files that failed" if kind == SyncRun.Kind.SYNC else "Files with problems"
        fieldsets = [
            *self.fieldsets,
            ("When", {"fields": [*RUN_OPTION_FIELDS[kind], *RUN_WHEN_FIELDS]}),
            ("What it did", {"fields": RUN_COUNT_FIELDS[kind]}),
            (files, {"fields": ["error_list"]}),
        ]
        if obj is not None and obj.diagnosis:
            fieldsets.append(("What check_storage found", {"fields": ["diagnosis_list"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fieldsets = self.get_fieldsets(request, obj)
        return [field for fieldset in fieldsets for field in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # runs are records of what happened

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "progress_url": reverse("admin:albums_syncrun_progress", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # Columns and fields

    @admin.display(description="Status", ordering="status")
    def status_label(self, run: SyncRun):
        return status_badge(run.status, run.get_status_display())

    @admin.display(description="Progress")
    def progress(self, run: SyncRun):
        text = f"{run.files_done} / {run.files_total} files"
        if run.status not in ACTIVE:
            return text
        return format_html(
            '<progress id="run-progress-bar" value="{}" max="{}"></progress> '
            '<span id="run-progress-text">{}</span>',
            run.files_done,
            max(run.files_total, 1),
            text,
        )

    @admin.display(description="Duration")
    def took(self, run: SyncRun):
        if run.duration is None:
            return "—"
        seconds = run.duration.total_seconds()
        if seconds < 60:
            return f"{seconds:.1f} s"
        minutes, seconds = divmod(round(seconds), 60)
        return (
            f"{minutes // 60} h {minutes % 60} min"
            if minutes >= 60
            else f"{minutes} min {seconds} s"
        )

    @admin.display(description="Bytes", ordering="bytes_uploaded")
    def bytes(self, run: SyncRun):
        """Uploaded by a sync, read by a verification, downloaded by a restore."""
        counted = {
            SyncRun.Kind.VERIFY: run.bytes_read,
            SyncRun.Kind.RESTORE: run.bytes_downloaded,
        }.get(run.kind, run.bytes_uploaded)
        return filesizeformat(counted)

    @admin.display(description="Errors")
    def error_list(self, run: SyncRun):
        if not run.errors:
            return "None."
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td></tr>", ((e["path"], e["error"]) for e in run.errors)
        )
        return format_html(
            "<table><thead><tr><th>File</th><th>Error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Checks")
    def diagnosis_list(self, run: SyncRun):
        """The bucket's diagnosis, taken when the bucket stopped this run."""
        checks = run.diagnosis.get("checks", [])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((c["status"].upper(), c["name"], c["detail"], c["fix"]) for c in checks),
        )
        return format_html(
            "<p>{}</p><table><thead><tr><th>Result</th><th>Check</th><th>Found</th>"
            "<th>How to fix</th></tr></thead><tbody>{}</tbody></table>",
            run.diagnosis.get("summary", ""),
            rows,
        )

    # Views

    def progress_view(self, request, object_id):
        """JSON for the run page's poll while the run is queued or running."""
        run = self.get_object(request, unquote(object_id))
        if run is None or not self.has_view_permission(request, run):
            raise Http404
        return JsonResponse(run_as_dict(run))


class PhotoStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("uploaded", "Uploaded by photosite"),
            ("found", "Found already in the bucket"),
            ("unverified", "Not verified by the album's last sync"),
            ("excluded", "Excluded by a pattern (kept, not synced)"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "uploaded":
                return queryset.filter(uploaded_at__isnull=False)
            case "found":
                return queryset.filter(uploaded_at__isnull=True)
            case "excluded":
                return queryset.filter(excluded_at__isnull=False)
            case "unverified":
                return queryset.filter(_verified_before_last_run())
        return queryset


def _verified_before_last_run() -> Q:
    """Photos last verified before their album's last finished real run started.

    Found without reading every photo (issue 16): one query finds the albums that have
    such photos (each album's oldest verified_at, from the (album, verified_at) index,
    against its last run); the photos of those albums are then matched against their run.
    """
    oldest = Photo.objects.filter(album=OuterRef("pk")).order_by("verified_at")
    albums = (
        Album.objects.annotate(
            run=_last_run("pk"),
            started=_last_run("started_at"),
            oldest=Subquery(oldest.values("verified_at")[:1]),
        )
        .filter(oldest__lt=F("started"))
        .values_list("pk", "run")
    )
    album_ids, run_ids = zip(*albums, strict=True) if albums else ((), ())
    runs = SyncRun.objects.filter(
        pk__in=run_ids, album=OuterRef("album"), started_at__gt=OuterRef("verified_at")
    )
    return Q(album_id__in=album_ids) & Q(Exists(runs))


class PhotoFailedFilter(admin.SimpleListFilter):
    title = "failed"
    parameter_name = "failed"

    def lookups(self, request, model_admin):
        return [("yes", "Failed in the album's last sync")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        last_runs = Album.objects.annotate(run=_last_run("pk")).values("run")
        failed = Q(pk__in=[])
        for album_id, errors in SyncRun.objects.filter(pk__in=last_runs, failed__gt=0).values_list(
            "album_id", "errors"
        ):
            failed |= Q(album_id=album_id, path__in=[error["path"] for error in errors])
        return queryset.filter(failed)


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = [
        "preview",
        "path",
        "album",
        "file_size",
        "dimensions",
        "taken_at",
        "uploaded_at",
        "verified_at",
    ]
    list_display_links = ["preview", "path"]
    list_filter = [("album", RelatedWithRowsFilter), PhotoStateFilter, PhotoFailedFilter]
    list_select_related = ["album"]
    search_fields = ["path", "key", "album__name"]  # see get_search_results
    date_hierarchy = "taken_at"
    # At a million photos (issue 16): the order of the (album, path) index, no full count.
    ordering = ["album_id", "path"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # Every row has a thumbnail and two links: rendering a row costs more than finding it
    # (half the server time of a page at 100 rows), and a browser loads every thumbnail.
    list_per_page = 50
    fields = [
        "large_preview", "album", "path", "key", "bucket_link", "file_size", "dimensions",
        "content_type", "taken_at", "modified_at", "uploaded_at", "verified_at", "excluded_at",
        "created_at",
    ]  # fmt: skip
    readonly_fields = fields

    def get_urls(self):
        # cacheable: the image URL carries the file's mtime, so a browser may keep it.
        view = self.admin_site.admin_view(self.thumbnail_view, cacheable=True)
        return [
            path("<path:object_id>/thumbnail/", view, name="albums_photo_thumbnail"),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return with_indexed_dates(super().get_queryset(request))

    def get_ordering(self, request):
        """By date taken inside a year, month or day of the drill-down: the order a person
        expects there, and the one the taken_at index gives at once (in (album, path) order
        the database would pass every photo of the albums before that year's first)."""
        if any(name.startswith(f"{self.date_hierarchy}__") for name in request.GET):
            return [self.date_hierarchy, "album_id", "path"]
        return super().get_ordering(request)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if changelist.paginator.short:  # the date drill-down reads a short list's dates at once
            changelist.queryset = changelist.queryset.few_rows()
        return changelist

    def get_search_results(self, request, queryset, search_term):
        """Photos whose path or key contains each word, or whose album's name does: the
        fields of `search_fields`, each answered by an index (trigram indexes on
        PostgreSQL, migration 0009) rather than one OR across the album join. The few
        matching albums are looked up first, so the database sees a list of ids."""

        def match(term):
            albums = Album.objects.filter(name__icontains=term).values_list("pk", flat=True)
            return Q(path__icontains=term) | Q(key__icontains=term) | Q(album_id__in=list(albums))

        found = search_by_each_term(queryset, search_term, match)
        return (searched_once(queryset, found) if search_term.strip() else found), False

    def has_add_permission(self, request):
        return False  # photos are recorded by syncs

    def has_change_permission(self, request, obj=None):
        return False

    # Columns and fields

    @admin.display(description="Preview")
    def preview(self, photo: Photo):
        return self._img(photo, 60)

    @admin.display(description="Preview")
    def large_preview(self, photo: Photo):
        return self._img(photo, 240)

    @admin.display(description="Size", ordering="size")
    def file_size(self, photo: Photo):
        return filesizeformat(photo.size)

    @admin.display(description="Dimensions")
    def dimensions(self, photo: Photo):
        return (
            f"{photo.width} \N{MULTIPLICATION SIGN} {photo.height}"
            if photo.width and photo.height
            else "—"
        )

    @admin.display(description="In the bucket")
    def bucket_link(self, photo: Photo):
        url = bucket_url(photo)
        if url is None:
            return format_html("{} <small>(local folder bucket: no link)</small>", photo.key)
        return format_html(
            '<a href="{}" rel="noreferrer">Open the object</a> <small>(link valid for an hour)</small>',
            url,
        )

    # Views

    def thumbnail_view(self, request, object_id):
        photo = self.get_object(request, unquote(object_id))
        if photo is None or not self.has_view_permission(request, photo):
            raise Http404
        try:
            image = thumbnail(photo)
        except NoPreview as exc:
            raise Http404(str(exc)) from None
        response = FileResponse(image.open("rb"), content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=86400"
        return response

    # Helpers

    def _img(self, photo: Photo, pixels: int):
        if not has_preview(photo):  # a video or a sidecar: a neutral icon, no failed request
            return format_html(
                '<span class="file-icon" title="{}" style="display: inline-block; '
                "min-width: {}px; padding: 2px 4px; border: 1px solid var(--border-color); "
                "border-radius: 3px; color: var(--body-quiet-color); text-align: center; "
                'font-size: 0.75rem">{}</span>',
                photo.content_type or "file",
                min(pixels, 60),
                (photo.path.rsplit(".", 1)[-1] if "." in photo.path else "file").upper(),
            )
        url = reverse("admin:albums_photo_thumbnail", args=[photo.pk])
        return format_html(
            '<img src="{}?v={}" alt="" loading="lazy" style="max-width: {}px; max-height: {}px">',
            url,
            photo.mtime_ns,
            pixels,
            pixels,
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "name", "created_at", "last_used_at"]
    readonly_fields = ["user", "created_at", "last_used_at"]
    fields = ["user", "name", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False  # tokens are created by `manage.py create_api_token`, shown once
