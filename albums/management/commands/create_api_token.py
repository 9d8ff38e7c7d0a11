from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from albums.tokens import create_token

UNKNOWN_USER = "No user named {username!r}."
CANNOT_SYNC = (
    "Warning: {username!r} is not an active staff user with the albums.sync_album "
    "permission; the API will refuse this token until they are."
)


class Command(BaseCommand):
    help = (
        "Create an API token acting as USERNAME and print it. It is shown only this once; "
        "send it as 'Authorization: Bearer <token>'."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for.")

    def handle(self, *, username, name, **options):
        try:
            user = get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(UNKNOWN_USER.format(username=username)) from None
        if not (user.is_active and user.is_staff and user.has_perm("albums.sync_album")):
            self.stderr.write(CANNOT_SYNC.format(username=username))
        _, token = create_token(user=user, name=name)
        self.stdout.write(token)
