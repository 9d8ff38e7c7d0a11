import os
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from PIL import Image, ImageDraw

from albums import conf
from albums.models import Album, Visibility

SAMPLE_ALBUM = "Sample Album"
SAMPLE_PHOTOS = 12
DEMO_USER = "admin"


class Command(BaseCommand):
    help = "Set up a demo: a generated sample album under PHOTOS_ROOT and an admin login."

    def handle(self, *args, **options):
        folder = conf.photos_root() / SAMPLE_ALBUM
        written = _write_sample_photos(folder)
        self.stdout.write(f"Sample album: {folder} ({written} new photos).")
        # Public, so that the site's front page shows it once it is synced.
        Album.objects.get_or_create(
            folder=SAMPLE_ALBUM,
            defaults={
                "name": SAMPLE_ALBUM,
                "slug": "sample-album",
                "visibility": Visibility.PUBLIC,
            },
        )
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)  # a fresh one each time, printed below
        user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin: http://127.0.0.1:8000/admin/  user: {DEMO_USER}  password: {password}"
            )
        )
        self.stdout.write("Site: http://127.0.0.1:8000/ (the sample album is public)")


def _write_sample_photos(folder) -> int:
    """Colourful JPEGs with EXIF dates, some in a subfolder; existing ones are kept."""
    written = 0
    start = datetime(2024, 7, 1, 9, 30)
    for number in range(SAMPLE_PHOTOS):
        subfolder = "Day 2/" if number >= SAMPLE_PHOTOS // 2 else ""
        path = folder / f"{subfolder}photo{number + 1:02}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        hue = number * 360 // SAMPLE_PHOTOS
        image = Image.new("HSV", (640, 427), (hue * 255 // 360, 160, 230)).convert("RGB")
        ImageDraw.Draw(image).ellipse((220, 110, 420, 310), fill=(255, 255, 255))
        exif = Image.Exif()
        taken = start + timedelta(hours=5 * number)
        exif.get_ifd(0x8769)[36867] = taken.strftime("%Y:%m:%d %H:%M:%S")
        image.save(path, "JPEG", quality=85, exif=exif)
        # Dated like the shot, as a camera import leaves it (and past the settle time).
        os.utime(path, (taken.timestamp(), taken.timestamp()))
        written += 1
    return written
