#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photosite.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings, which read the environment
    except ImproperlyConfigured as exc:
        # A bad environment variable is the user's to fix: say which, without a traceback.
        sys.exit(f"Configuration error: {exc}")
    try:
        execute_from_command_line(sys.argv)
    except KeyboardInterrupt:
        # Ctrl-C: a command that was changing something says what it kept (sync_albums
        # does); anywhere else there is nothing to add to the shell's own "^C".
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
