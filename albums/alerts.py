"""Email the admins when background syncs of an album start failing, and when they recover.

Once per album per streak of failures (issue 16): the first sync run in the background (the
schedule, the admin, the API, `sync_albums --async`, or `sync_albums --alert` from cron) that
fails or ends partial after a success sends one email to DJANGO_ADMINS; the next failures of
the same album send nothing; the first success after them sends one "recovered" email. A
sync run by the command here and now without --alert sends nothing (whoever ran it sees the
outcome), and neither do verifications, restores and dry runs.

The streak is counted by albums.sync.records.runs where the run's outcome is stored, which sends
`streak_counted` once the database is written; this module only decides what to say and
sends it. An email that cannot be sent is logged and never fails the run; the failure alert
is then tried again at the album's next failure, so a mail server down for a moment does
not leave the admins unaware of a week of failures.

The text holds the album, the run's message and the files that failed, which never contain a
credential (albums.storage.errors words them), and a link to the run; no setting's value.
"""

import logging

from django.conf import settings
from django.core.mail import mail_admins
from django.urls import reverse
from django.utils import timezone

from . import conf
from .models import Album, SyncRun, SyncStatus
from .sync.records import runs
from .sync.records.runs import Streak

logger = logging.getLogger(__name__)

LISTED_FILES = 20  # files named in a partial run's email; the run's page has them all
FAILED_SUBJECT = "Album {album}: sync {outcome}"
RECOVERED_SUBJECT = "Album {album}: sync recovered"
OUTCOMES = {SyncStatus.FAILED: "failed", SyncStatus.PARTIAL: "partly failed"}
STARTED_BY = {
    SyncRun.Trigger.SCHEDULE: "the schedule",
    SyncRun.Trigger.ADMIN: "the admin",
    SyncRun.Trigger.API: "the API",
    SyncRun.Trigger.COMMAND: "sync_albums --async",
    SyncRun.Trigger.UNATTENDED: "sync_albums --alert (cron, say)",
    SyncRun.Trigger.TASK: "a task",
}
FAILED_BODY = """\
The sync of album {album} {outcome}.

Album:       {album} (slug {slug}, folder {folder})
Run:         #{run_id}, started by {trigger}, finished {finished}
What failed: {what}
{message}In a row:    {in_a_row} sync(s) of this album in a row failed or partly failed; last success: {last_success}.
{link}{files}
No other email will come about this album until one of its background syncs succeeds
again: that one will.
"""
RECOVERED_BODY = """\
The sync of album {album} succeeded again, after {ended} sync(s) in a row that failed or
partly failed.

Album:       {album} (slug {slug}, folder {folder})
Run:         #{run_id}, started by {trigger}, finished {finished}
{link}"""
WHOLE_RUN = "the whole run: it stopped (see the message)"
MESSAGE = "Message:     {message}\n"
SOME_FILES = "{count} file(s); the rest of the album synced"
LINK = "See the run: {url}\n"
NO_LINK = "See the run: Sync runs, #{run_id}, in the admin (set PHOTOSITE_URL for a link)\n"
NEVER = "never"
MORE_FILES = "… and {count} more, on the run's page.\n"
NOT_SENT = (
    "Could not email the admins about album %r (run #%s): %s. The run is recorded as it ended."
)


def on_streak_counted(sender, *, run: SyncRun, streak: Streak, **kwargs) -> None:
    """Receiver of runs.streak_counted: the email a background sync's outcome calls for, if
    any. Never raises: an email that cannot be sent is logged."""
    if not conf.alerts_enabled() or not settings.ADMINS:
        return
    if streak.failures and not streak.alerted:
        if _send(run, *failure_email(run, streak)):
            runs.mark_alerted(streak)
    elif not streak.failures and streak.alerted:
        _send(run, *recovery_email(run, streak))


def failure_email(run: SyncRun, streak: Streak) -> tuple[str, str]:
    """(subject, body) of the email about a failed or partial run."""
    album, outcome = run.album, OUTCOMES[run.status]
    partial = run.status == SyncStatus.PARTIAL
    body = FAILED_BODY.format(
        outcome=outcome,
        what=SOME_FILES.format(count=run.failed) if partial else WHOLE_RUN,
        message=MESSAGE.format(message=_one_line(run.message)) if run.message else "",
        in_a_row=streak.failures,
        last_success=_last_success(album),
        files=_files(run) if partial else "",
        **_about(run),
    )
    return FAILED_SUBJECT.format(album=_quoted(album.name), outcome=outcome), body


def recovery_email(run: SyncRun, streak: Streak) -> tuple[str, str]:
    """(subject, body) of the email about the success that ended a streak."""
    body = RECOVERED_BODY.format(ended=streak.ended, **_about(run))
    return RECOVERED_SUBJECT.format(album=_quoted(run.album.name)), body


def _send(run: SyncRun, subject: str, body: str) -> bool:
    try:
        mail_admins(subject, body, fail_silently=False)
    except Exception as exc:  # whatever the mail server or the network did: never the run's
        cause = f"{type(exc).__name__}: {exc}".rstrip(". ")
        logger.error(NOT_SENT, run.album.name, run.pk, cause)
        return False
    return True


def _about(run: SyncRun) -> dict:
    album = run.album
    return {
        "album": _quoted(album.name),
        "slug": album.slug,
        "folder": _quoted(album.folder),
        "run_id": run.pk,
        "trigger": STARTED_BY.get(run.trigger, run.get_trigger_display()),
        "finished": _when(run.finished_at),
        "link": _link(run),
    }


def _link(run: SyncRun) -> str:
    base = getattr(settings, "PHOTOSITE_URL", None)
    if not base:
        return NO_LINK.format(run_id=run.pk)
    path = reverse("admin:albums_syncrun_change", args=[run.pk])
    return LINK.format(url=base.rstrip("/") + path)


def _files(run: SyncRun) -> str:
    listed = [f"  {_one_line(e['path'])}: {_one_line(e['error'])}" for e in run.errors]
    text = "\nFiles that failed:\n" + "".join(line + "\n" for line in listed[:LISTED_FILES])
    if run.failed > LISTED_FILES:
        text += MORE_FILES.format(count=run.failed - LISTED_FILES)
    return text


def _last_success(album: Album) -> str:
    last = (
        SyncRun.objects.filter(
            album=album, kind=SyncRun.Kind.SYNC, dry_run=False, status=SyncStatus.SUCCESS
        )
        .order_by("-id")
        .values_list("pk", "finished_at")
        .first()
    )
    return NEVER if last is None else f"{_when(last[1])} (run #{last[0]})"


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


def _quoted(text: str) -> str:
    return '"' + _one_line(text) + '"'


def _one_line(text: str) -> str:
    """Headers cannot hold a line break, and a message is easier to read on one line."""
    return " ".join(str(text).split())
