"""What Django's report of a server error (mailed to the admins) may show."""

from urllib.parse import urlsplit

from django.views.debug import SafeExceptionReporterFilter


class ExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, which hides settings named like secrets (KEY, PASS, TOKEN, …), and
    also any setting that is a URL with a password, whatever its name: REDIS_URL,
    Q_CLUSTER["redis"]."""

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        if isinstance(value, str) and _has_password(value):
            return self.cleansed_substitute
        return value


def _has_password(text: str) -> bool:
    try:
        return bool(urlsplit(text).password)
    except ValueError:
        return False
