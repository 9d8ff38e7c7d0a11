"""The albums: their state at a glance, and a sync, verification or restore in one click."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import ngettext

from ..exceptions import QueueUnavailable
from ..models import Album, Photo, SyncRun, SyncStatus
from ..sync import follow_note, queue_sync, queue_syncs, worker_seen
from .display import last_run, run_link, status_badge
from .share_links import ShareLinkInline

SYNC_QUEUED = "Sync of “{album}” queued as {run}."
DRY_RUN_QUEUED = "Dry run of “{album}” queued as {run}."
VERIFY_QUEUED = "Verification of “{album}” queued as {run}."
RESTORE_QUEUED = "Restore of the missing photos of “{album}” queued as {run}."
ALREADY_RUNNING = "“{album}” is being synced right now: see {run}."
NO_WORKER = (
    "No background worker has been seen recently, so the run will wait in the queue: "
    "start one with “python manage.py qcluster”."
)

RECENT_RUNS = 10


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
                fine = ["", SyncStatus.SUCCESS, SyncStatus.CONTINUED]  # continued: going on
                return queryset.exclude(last_sync_status__in=fine)
        return queryset


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin):
    list_display = ["name", "folder", "photo_count", "last_sync", "sync_on_schedule", "visibility"]
    list_filter = [
        SyncStateFilter,
        "visibility",
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
    fields = ["name", "slug", "folder", "sync_on_schedule", "visibility", *readonly_fields]
    inlines = [ShareLinkInline]
    actions = ["sync_selected", "render_selected", "restore_selected"]
    list_per_page = 50
    # "Show counts" stays (Django's default): one album per folder, a few thousand at most,
    # counted in tens of milliseconds (issue 28, bench/RESULTS-admin.md).
    show_facets = admin.ShowFacets.ALLOW

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
                last_run_id=last_run("pk"),
                last_run_sent=last_run(F("uploaded") + F("reuploaded")),
                last_run_failed=last_run("failed"),
                last_run_removed=last_run("removed"),
                last_run_excluded=last_run("excluded"),
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
            "<li>{} · {} · {} · {}{}</li>",
            (
                (
                    run_link(run),
                    status_badge(run.status, run.get_status_display()),
                    run.get_trigger_display() + (" (dry run)" if run.dry_run else ""),
                    timesince(run.queued_at or run.started_at) + " ago"
                    if (run.queued_at or run.started_at)
                    else "",
                    f" · {note}" if (note := follow_note(run)) else "",
                )
                for run in runs
            ),
        )
        return format_html('<ul style="margin-left: 0; padding-left: 0">{}</ul>', rows)

    # Actions and views

    @admin.action(permissions=["sync"], description="Sync selected albums")
    def sync_selected(self, request, queryset):
        self._queue_each(
            request,
            queryset,
            ("Queued a sync of %(count)d album:", "Queued syncs of %(count)d albums:"),
        )

    @admin.action(permissions=["sync"], description="Make missing web renditions")
    def render_selected(self, request, queryset):
        """A sync of each album that renders every photo without renditions (render_albums)."""
        self._queue_each(
            request,
            queryset,
            (
                "Queued the missing web renditions of %(count)d album:",
                "Queued the missing web renditions of %(count)d albums:",
            ),
            render_all=True,
        )

    @admin.action(permissions=["restore"], description="Restore missing photos")
    def restore_selected(self, request, queryset):
        self._queue_each(
            request,
            queryset,
            ("Queued a restore of %(count)d album:", "Queued restores of %(count)d albums:"),
            kind=SyncRun.Kind.RESTORE,
        )

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

    def _queue_each(self, request, albums, message: tuple[str, str], **options) -> None:
        """Queue a run of each album (one task for them all) and say so, with links."""
        try:
            runs = queue_syncs(albums=albums, trigger=SyncRun.Trigger.ADMIN, **options)
        except QueueUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        said = ngettext(*message, len(runs)) % {"count": len(runs)}
        links = format_html_join(", ", "{}", ((run_link(run),) for run in runs))
        self.message_user(request, format_html("{} {}", said, links), messages.SUCCESS)
        self._warn_if_no_worker(request)

    def _warn_if_no_worker(self, request):
        if not worker_seen():
            self.message_user(request, NO_WORKER, messages.WARNING)
