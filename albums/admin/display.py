"""What several admin pages show alike: a run's status with its icon, a link to a run, and
a value of an album's last run for a list's annotation."""

from django.db.models import F, OuterRef, Subquery
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html

from ..models import SyncRun, SyncStatus

STATUS_ICONS = {
    SyncStatus.SUCCESS: "icon-yes.svg",
    SyncStatus.PARTIAL: "icon-alert.svg",
    SyncStatus.FAILED: "icon-no.svg",
    SyncStatus.SKIPPED: "icon-alert.svg",
    SyncStatus.CONTINUED: "icon-clock.svg",  # went on in the run that follows it
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


def last_run(value):
    """`value` (a field name or expression) on the album's latest finished real run."""
    runs = SyncRun.objects.filter(
        album=OuterRef("pk"), dry_run=False, finished_at__isnull=False
    ).order_by("-id")
    return Subquery(runs.values(value=F(value) if isinstance(value, str) else value)[:1])
