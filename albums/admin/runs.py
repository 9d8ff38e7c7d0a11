"""The runs: what each sync, verify or restore did, followed live while it runs."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404, JsonResponse
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from ..counts import COUNTS_BY_KIND
from ..models import SyncRun, SyncStatus
from ..sync import follow_note, run_as_dict
from ..sync.records.runs import ACTIVE
from .display import run_link, status_badge
from .large_lists import EstimatedCountPaginator, with_indexed_dates

RUN_WHEN_FIELDS = ["trigger", "queued_at", "started_at", "finished_at", "took"]
RUN_OPTION_FIELDS = {
    "sync": ["dry_run", "prune", "render_all"],
    "verify": ["repair"],
    "restore": ["dry_run"],
}
# Every count of a run's kind (photos, objects), then its bytes as a size ("bytes" below).
RUN_COUNT_FIELDS = {
    kind: [*(name for name, _, _, unit in counts.specs() if unit != "bytes"), "failed", "bytes"]
    for kind, counts in COUNTS_BY_KIND.items()
}


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
    # No "Show counts" (issue 28): it counts every run once per filter, a cost that grows
    # with the history (about 0.3 s at 200,000 runs, bench/RESULTS-admin.md).
    show_facets = admin.ShowFacets.NEVER
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
        main = self.fieldsets
        if obj is not None and (obj.follows_id or obj.status == SyncStatus.CONTINUED):
            chain = [
                *(["picks_up"] if obj.follows_id else []),
                *(["continued_in"] if obj.status == SyncStatus.CONTINUED else []),
            ]
            main = [(None, {"fields": [*main[0][1]["fields"], *chain]})]
        fieldsets = [
            *main,
            ("When", {"fields": [*RUN_OPTION_FIELDS[kind], *RUN_WHEN_FIELDS]}),
            ("What it did", {"fields": RUN_COUNT_FIELDS[kind]}),
            (files, {"fields": ["error_list"]}),
        ]
        if obj is not None and obj.rendition_problems:
            fieldsets.append(
                ("Photos without web renditions", {"fields": ["rendition_problem_list"]})
            )
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

    @admin.display(description="Picks up from")
    def picks_up(self, run: SyncRun):
        """After a run that spent its time budget, or one that was interrupted."""
        return format_html("{} ({})", follow_note(run), run_link(run.follows))

    @admin.display(description="Continued in")
    def continued_in(self, run: SyncRun):
        following = run.followed_by.order_by("id").first()
        if following is None:
            return "—"
        return format_html(
            "{} · {}",
            run_link(following),
            status_badge(following.status, following.get_status_display()),
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
        return _file_table(run.errors, "Error")

    @admin.display(description="Why")
    def rendition_problem_list(self, run: SyncRun):
        return _file_table(run.rendition_problems, "Why")

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


def _file_table(rows: list[dict], heading: str):
    """Files of a run, each with what went wrong."""
    if not rows:
        return "None."
    cells = format_html_join(
        "", "<tr><td>{}</td><td>{}</td></tr>", ((row["path"], row["error"]) for row in rows)
    )
    return format_html(
        "<table><thead><tr><th>File</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
        heading,
        cells,
    )
