"""Alerts: the admins are emailed once per album per streak of failed background syncs, and
once when it recovers (issue 16). Sent for real, over SMTP, to a server on 127.0.0.1."""

import email
import email.policy
import ipaddress
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.test import Client
from django.urls import path, reverse
from django.utils import timezone

from albums import alerts
from albums.models import Album, SyncRun, SyncStatus
from albums.sync import queue_sync
from albums.tasks import run_sync, sync_due_albums
from photosite import env
from photosite.settings import email_settings
from tests.conftest import FAKE_SECRET, closed_port, run_manage, use_s3, write_photo

# The tests' server wants a login without TLS (no certificate here); aiosmtpd warns of it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

ADMINS = "Ada Admin <ada@example.org>, ops@example.org"
SITE = "https://photos.example.org"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes
    tls: bool

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return self.message["Subject"]

    @property
    def body(self) -> str:
        return self.message.get_body().get_content().replace("\r\n", "\n")


class MailServer:
    """An SMTP server (aiosmtpd, on its own thread) that wants the login alerts/FAKE_SECRET,
    over STARTTLS if given a `tls` context; `refuse` is a reply it then gives to every
    message instead of taking it."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.received: list[Received] = []
        self.refuse: str | None = None
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=closed_port(),
            server_hostname="smtp.test",  # not the machine's name, which may need DNS
            authenticator=self.authenticate,
            auth_required=True,
            tls_context=tls,
            require_starttls=tls is not None,
            auth_require_tls=tls is not None,  # without a certificate, a login in clear
        )

    @property
    def port(self) -> int:
        return self.controller.port

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == (b"alerts", FAKE_SECRET.encode())
        return AuthResult(success=ok, handled=False)  # the server answers 535 itself

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse:
            return self.refuse
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                tls=session.ssl is not None,
            )
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def mail_server():
    server = MailServer()
    server.controller.start()
    yield server
    server.controller.stop()


def use_email(settings, port: int, **environ) -> None:
    """The email settings as photosite reads them from the environment, and the real SMTP
    backend (pytest-django puts the in-memory one in its place)."""
    environ = {
        "DJANGO_ADMINS": ADMINS,
        "DJANGO_EMAIL_HOST": "127.0.0.1",
        "DJANGO_EMAIL_PORT": str(port),
        "DJANGO_EMAIL_HOST_USER": "alerts",
        "DJANGO_EMAIL_HOST_PASSWORD": FAKE_SECRET,
        "DJANGO_SERVER_EMAIL": "photosite <photosite@example.org>",
        **environ,
    }
    for name, value in email_settings(environ).items():
        setattr(settings, name, value)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.PHOTOSITE_URL = SITE


@pytest.fixture
def alerting(settings, mail_server, local_bucket) -> MailServer:
    use_email(settings, mail_server.port)
    return mail_server


@pytest.fixture
def scheduled(on_commit):
    """The schedule's task, as a cluster runs it (sync mode: the runs run on commit)."""

    def run_the_schedule() -> list[SyncRun]:
        with on_commit():
            ids = sync_due_albums()
        return list(SyncRun.objects.filter(pk__in=ids).order_by("album__slug"))

    return run_the_schedule


def break_folder(album: Album) -> None:
    album.path.rename(album.path.with_name(album.folder + " (moved)"))


def mend_folder(album: Album) -> None:
    album.path.with_name(album.folder + " (moved)").rename(album.path)


def test_a_failing_scheduled_sync_mails_the_admins_once_then_recovered_once(
    album, alerting, scheduled
):
    break_folder(album)

    [first] = scheduled()

    assert first.status == SyncStatus.FAILED
    [sent] = alerting.received
    assert sent.sender == "photosite@example.org"
    assert sent.recipients == ["ada@example.org", "ops@example.org"]
    assert sent.subject == '[photosite] Album "Summer 2024": sync failed'
    assert 'The sync of album "Summer 2024" failed.' in sent.body
    assert f"Run:         #{first.pk}, started by the schedule, finished " in sent.body
    assert f"Message:     {first.message}" in sent.body
    assert "does not exist" in first.message
    assert "1 sync(s) of this album in a row failed" in sent.body
    assert "last success: never" in sent.body
    assert f"{SITE}/admin/albums/syncrun/{first.pk}/change/" in sent.body

    [second] = scheduled()  # the same album fails again: the admins know already

    assert second.status == SyncStatus.FAILED
    assert len(alerting.received) == 1
    album.refresh_from_db()
    assert album.sync_failures_in_row == 2

    mend_folder(album)
    [third] = scheduled()

    assert third.status == SyncStatus.SUCCESS
    assert len(alerting.received) == 2
    recovered = alerting.received[1]
    assert recovered.subject == '[photosite] Album "Summer 2024": sync recovered'
    assert "succeeded again, after 2 sync(s) in a row" in recovered.body
    assert f"{SITE}/admin/albums/syncrun/{third.pk}/change/" in recovered.body
    assert recovered.recipients == ["ada@example.org", "ops@example.org"]

    scheduled()  # a success after a success: nothing to say
    break_folder(album)
    [fourth] = scheduled()  # a new streak: a new email, which knows the last success

    assert len(alerting.received) == 3
    assert "1 sync(s) of this album in a row" in alerting.received[2].body
    assert f"(run #{fourth.pk - 1})" in alerting.received[2].body


def test_each_albums_streak_is_its_own_and_a_partial_run_names_its_files(
    album, alerting, scheduled, photos_root
):
    write_photo(photos_root / "Winter" / "fine.jpg")
    write_photo(photos_root / "Winter" / "back\\slash.jpg")  # cannot be a key: that file fails
    Album.objects.create(name="Winter", slug="winter", folder="Winter")
    break_folder(album)

    summer, winter = scheduled()

    assert (summer.status, winter.status) == (SyncStatus.FAILED, SyncStatus.PARTIAL)
    by_subject = {sent.subject: sent for sent in alerting.received}
    assert sorted(by_subject) == [
        '[photosite] Album "Summer 2024": sync failed',
        '[photosite] Album "Winter": sync partly failed',
    ]
    partial = by_subject['[photosite] Album "Winter": sync partly failed'].body
    assert "What failed: 1 file(s); the rest of the album synced" in partial
    assert "  back\\slash.jpg: " in partial
    assert "fine.jpg" not in partial
    assert "Message:" not in partial  # a partial run has no message of its own

    scheduled()  # both fail again: nothing new

    assert len(alerting.received) == 2
    (photos_root / "Winter" / "back\\slash.jpg").unlink()
    summer, winter = scheduled()  # Winter recovers alone

    assert (summer.status, winter.status) == (SyncStatus.FAILED, SyncStatus.SUCCESS)
    assert alerting.received[2].subject == '[photosite] Album "Winter": sync recovered'
    assert len(alerting.received) == 3


def test_a_run_from_the_command_line_mails_nobody_and_is_not_in_the_streak(
    album, alerting, scheduled
):
    break_folder(album)
    with pytest.raises(CommandError):
        call_command("sync_albums", stdout=StringIO(), stderr=StringIO())

    assert alerting.received == []
    album.refresh_from_db()
    assert album.sync_failures_in_row == 0

    scheduled()  # the schedule fails too: that is the streak's first failure
    mend_folder(album)
    call_command("sync_albums", stdout=StringIO(), stderr=StringIO())  # fixed by hand

    assert len(alerting.received) == 1  # whoever ran it saw it succeed
    scheduled()  # the first background success says so
    assert [sent.subject for sent in alerting.received][1:] == [
        '[photosite] Album "Summer 2024": sync recovered'
    ]


def test_a_run_from_cron_with_alert_mails_like_a_background_one(album, alerting, on_commit):
    """`sync_albums --alert` is for runs nobody watches (cron): its failures start a streak
    and mail the admins once, and its next success says the album recovered."""

    def from_cron():
        with on_commit():  # the email goes once the run's outcome is committed
            call_command("sync_albums", "--alert", "-v0", stdout=StringIO(), stderr=StringIO())

    break_folder(album)
    for _ in range(2):
        with pytest.raises(CommandError):
            from_cron()

    [sent] = alerting.received
    run = SyncRun.objects.filter(album=album).latest("pk")
    assert run.trigger == SyncRun.Trigger.UNATTENDED
    assert sent.subject == '[photosite] Album "Summer 2024": sync failed'
    assert "started by sync_albums --alert (cron, say)" in sent.body
    album.refresh_from_db()
    assert album.sync_failures_in_row == 2

    mend_folder(album)
    from_cron()

    assert [sent.subject for sent in alerting.received][1:] == [
        '[photosite] Album "Summer 2024": sync recovered'
    ]


def test_a_run_queued_from_the_admin_alerts_but_a_dry_run_or_a_verify_does_not(
    album, alerting, on_commit
):
    break_folder(album)
    with on_commit():
        dry = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN, dry_run=True)
        verify = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN, kind=SyncRun.Kind.VERIFY)

    dry.refresh_from_db()
    verify.refresh_from_db()
    assert dry.status == verify.status == SyncStatus.FAILED
    assert alerting.received == []

    with on_commit():
        run = queue_sync(album=album, trigger=SyncRun.Trigger.ADMIN)

    [sent] = alerting.received
    assert f"#{run.pk}, started by the admin" in sent.body


def test_a_setting_that_stops_every_sync_before_it_starts_is_mailed(
    album, alerting, settings, on_commit
):
    settings.ALBUMS_SYNC_WORKERS = "many"
    run = SyncRun.objects.create(
        album=album, trigger=SyncRun.Trigger.SCHEDULE, status=SyncStatus.QUEUED,
        queued_at=timezone.now(),
    )  # fmt: skip

    with pytest.raises(ImproperlyConfigured), on_commit():
        run_sync(run.pk)  # sync mode: the task's error reaches its caller

    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    [sent] = alerting.received
    assert "ALBUMS_SYNC_WORKERS must be a whole number" in sent.body


@pytest.mark.parametrize("fault", ["down", "login refused", "message refused"])
def test_a_mail_server_that_is_down_or_refuses_never_fails_the_run(
    album, alerting, scheduled, settings, caplog, fault
):
    if fault == "down":
        settings.EMAIL_PORT = closed_port()
    elif fault == "login refused":
        settings.EMAIL_HOST_PASSWORD = "not-the-password"
    else:
        alerting.refuse = "554 5.7.1 Relay access denied"
    break_folder(album)

    with caplog.at_level(logging.ERROR, logger="albums"):
        [run] = scheduled()

    assert run.status == SyncStatus.FAILED  # recorded as it ended, nothing more
    assert "does not exist" in run.message
    assert alerting.received == []
    [logged] = [r for r in caplog.records if r.name == "albums.alerts"]
    assert logged.getMessage().startswith(
        f"Could not email the admins about album 'Summer 2024' (run #{run.pk}): "
    )
    assert FAKE_SECRET not in caplog.text

    # The admins never heard of this streak: its next failure tells them, once the server
    # takes the email.
    settings.EMAIL_PORT, settings.EMAIL_HOST_PASSWORD = alerting.port, FAKE_SECRET
    alerting.refuse = None
    scheduled()

    [sent] = alerting.received
    assert "2 sync(s) of this album in a row failed" in sent.body


def test_no_secret_in_any_email(album, alerting, scheduled, settings, photos_root):
    """The bucket's secret key and the mail server's password are both FAKE_SECRET."""
    use_s3(
        settings, AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}", AWS_S3_MAX_ATTEMPTS="1"
    )
    [failed] = scheduled()

    assert failed.status == SyncStatus.FAILED
    [sent] = alerting.received
    assert "Cannot reach the bucket" in sent.body
    for text in (sent.raw.decode("utf-8", "replace"), sent.subject, sent.body):
        assert FAKE_SECRET not in text
        assert settings.SECRET_KEY not in text


def test_alerts_can_be_turned_off(album, alerting, scheduled, settings, admin_client):
    settings.ALBUMS_ALERTS = False
    break_folder(album)

    scheduled()
    scheduled()

    assert alerting.received == []
    album.refresh_from_db()
    assert album.sync_failures_in_row == 2  # still counted, and shown on the album's page
    page = admin_client.get(reverse("admin:albums_album_change", args=[album.pk]))
    assert re.search(r"Failed syncs in a row:</label>\s*<div class=\"readonly\">2<", page.text)


def test_the_login_and_the_email_go_over_starttls_when_asked(
    album, settings, local_bucket, scheduled, tmp_path, monkeypatch
):
    cert, key = self_signed_certificate(tmp_path, "127.0.0.1")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = MailServer(tls)  # refuses a login, or a message, before STARTTLS
    server.controller.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate only
    use_email(settings, server.port, DJANGO_EMAIL_USE_TLS="1")
    break_folder(album)
    try:
        scheduled()
    finally:
        server.controller.stop()

    [sent] = server.received
    assert sent.tls
    assert sent.subject == '[photosite] Album "Summer 2024": sync failed'


def self_signed_certificate(folder: Path, address: str) -> tuple[Path, Path]:
    """A certificate for `address` (an IP address), and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert, key_file = folder / "smtp.pem", folder / "smtp.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_file


def test_without_admins_nothing_is_sent(album, alerting, scheduled, settings):
    settings.ADMINS = []
    break_folder(album)

    scheduled()

    assert alerting.received == []


def test_without_a_site_url_the_email_says_where_the_run_is(album, alerting, scheduled, settings):
    settings.PHOTOSITE_URL = None
    break_folder(album)

    [run] = scheduled()

    [sent] = alerting.received
    assert alerts.NO_LINK.format(run_id=run.pk) in sent.body
    assert "http" not in sent.body


# Settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"DJANGO_ADMINS": "ada@"}, "DJANGO_ADMINS must be email addresses separated by commas, "
         "such as 'Ada <ada@example.org>, ops@example.org', not 'ada@' ('ada@' is not"),
        ({"DJANGO_ADMINS": "ops@example.org, Ada <ada>"}, "('Ada <ada>' is not an email"),
        ({"DJANGO_EMAIL_HOST": "smtp://mail.example.org"}, "DJANGO_EMAIL_HOST must be a host "
         "name alone, such as smtp.example.org, not 'smtp://mail.example.org'."),
        ({"DJANGO_EMAIL_HOST": "mail.example.org:587"}, "a host name alone"),
        ({"DJANGO_EMAIL_PORT": "70000"}, "DJANGO_EMAIL_PORT must be a whole number from 1 to "
         "65535, such as 25, not '70000'."),
        ({"DJANGO_EMAIL_USE_TLS": "1", "DJANGO_EMAIL_PORT": "smtp"}, "such as 587"),
        ({"DJANGO_EMAIL_USE_TLS": "maybe"}, "DJANGO_EMAIL_USE_TLS must be true or false"),
        ({"DJANGO_EMAIL_USE_TLS": "1", "DJANGO_EMAIL_USE_SSL": "1"}, "cannot both be on"),
        ({"DJANGO_EMAIL_HOST_USER": "alerts"}, "DJANGO_EMAIL_HOST_USER and "
         "DJANGO_EMAIL_HOST_PASSWORD must be set together"),
        ({"DJANGO_EMAIL_TIMEOUT": "0"}, "DJANGO_EMAIL_TIMEOUT must be a whole number of at least 1"),
        ({"DJANGO_SERVER_EMAIL": "photosite"}, "DJANGO_SERVER_EMAIL must be an email address "
         "such as photosite@example.org"),
        ({"DJANGO_DEFAULT_FROM_EMAIL": "a@b@c"}, "DJANGO_DEFAULT_FROM_EMAIL must be an email"),
    ],
)  # fmt: skip
def test_a_malformed_email_setting_is_named_with_a_good_example(environ, said):
    with pytest.raises(ImproperlyConfigured) as caught:
        email_settings(environ)

    assert said in str(caught.value)
    assert FAKE_SECRET not in str(caught.value)


def test_good_email_settings_are_read_as_django_wants_them():
    read = email_settings(
        {
            "DJANGO_ADMINS": ADMINS + ",",
            "DJANGO_EMAIL_HOST": "smtp.example.org",
            "DJANGO_EMAIL_USE_SSL": "yes",
            "DJANGO_DEFAULT_FROM_EMAIL": "photosite <photosite@example.org>",
        }
    )

    assert read["ADMINS"] == [("Ada Admin", "ada@example.org"), ("", "ops@example.org")]
    assert (read["EMAIL_HOST"], read["EMAIL_PORT"], read["EMAIL_USE_SSL"]) == (
        "smtp.example.org", 465, True,
    )  # fmt: skip
    assert read["SERVER_EMAIL"] == "photosite <photosite@example.org>"
    assert read["EMAIL_TIMEOUT"] == 10  # never Django's wait for ever
    assert email_settings({})["ADMINS"] == []
    assert env.host_name("H", "::1", example="x") == "::1"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("DJANGO_ADMINS", "Ada <ada@example>", "email addresses separated by commas"),
        ("PHOTOSITE_URL", "photos.example.org", "a URL with its scheme, such as https://"),
        ("ALBUMS_ALERTS", "sometimes", "true or false (or 1 or 0)"),
    ],
)
def test_a_bad_alert_setting_stops_a_command_without_a_traceback(name, value, said):
    outcome = run_manage("check", env={"DJANGO_SECRET_KEY": "k", name: value})

    assert outcome.returncode == 1
    assert outcome.stderr.startswith(f"Configuration error: {name} must be {said}")
    assert "Traceback" not in outcome.stderr


# Django's own email to the admins: the report of a server error ----------------------------


def broken_view(request):
    raise RuntimeError("broken on purpose")


urlpatterns = [path("broken/", broken_view), path("fine/", lambda request: HttpResponse("ok"))]


@pytest.mark.urls(__name__)
def test_the_report_of_a_server_error_shows_no_url_password(settings, db):
    settings.ADMINS = [("Ada", "ada@example.org")]
    settings.REDIS_URL = f"redis://:{FAKE_SECRET}@redis.internal:6379/0"
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": settings.REDIS_URL}
    settings.DEBUG = False

    response = Client(raise_request_exception=False).get("/broken/")

    assert response.status_code == 500
    [report] = mail.outbox
    assert "broken on purpose" in report.body
    assert "REDIS_URL" in report.body  # the settings are listed, that one hidden
    assert FAKE_SECRET not in report.body
    assert FAKE_SECRET not in str(report.message())


def test_smtp_server_fixture_needs_the_login(mail_server):
    """The tests' server refuses a client without the login, so the alerts above prove it."""
    with (
        smtplib.SMTP("127.0.0.1", mail_server.port, timeout=5) as client,
        pytest.raises(smtplib.SMTPSenderRefused),
    ):
        client.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nx")
