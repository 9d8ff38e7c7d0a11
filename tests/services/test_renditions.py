"""Web renditions: made by the sync from the bytes it reads, upright, sRGB and without any
metadata, kept in the bucket under keys of their content, and never made or sent twice."""

import io
import os
import resource
import struct
import zlib

import pillow_heif
import pytest
from PIL import Image

from albums.models import Album, Photo, SyncRun
from albums.renditions import RenditionSpec
from albums.renditions.render import RAW_NOT_RENDERED
from albums.sync import sync_album, sync_albums
from tests.conftest import write_photo

pytestmark = pytest.mark.django_db

RED, BLUE = (220, 20, 20), (20, 20, 220)
SIGNATURE = "v1-webp-q80-400-2048"
GPS_IFD = 0x8825


@pytest.fixture(autouse=True)
def renditions(settings):
    settings.ALBUMS_RENDITIONS = True
    settings.ALBUMS_RENDITION_SIZES = "400,2048"
    settings.ALBUMS_RENDITION_FORMAT = "webp"
    settings.ALBUMS_RENDITION_QUALITY = ""


def camera_jpeg(path, *, size=(1200, 800), orientation=None, noise=False, **save):
    """A JPEG with a blue block in its top-left corner as stored, a GPS position, a camera
    model, a comment and XMP: everything a rendition must not carry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, RED)
    if noise:  # camera-like entropy: a file of several MB
        grain = Image.frombytes(
            "RGB", (size[0] // 4, size[1] // 4), os.urandom(size[0] * size[1] * 3 // 16)
        )
        image = Image.blend(image, grain.resize(size), 0.25)
    image.paste(BLUE, (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    exif[0x0110] = "Camera X100"
    if orientation:
        exif[0x0112] = orientation
    exif[GPS_IFD] = {1: "N", 2: (52.0, 22.0, 30.0), 3: "E", 4: (4.0, 53.0, 10.0)}
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret place</x:xmpmeta>'
    image.save(path, "JPEG", exif=exif.tobytes(), xmp=xmp, comment=b"home", quality=92, **save)
    os.utime(path, ns=(1_700_000_000_000_000_000,) * 2)
    return path


def rendition_keys(photo: Photo) -> list[str]:
    spec = RenditionSpec((400, 2048), "webp", 80)
    return spec.keys(photo.md5)


def opened(s3, key: str) -> tuple[Image.Image, bytes]:
    data = s3.body(key)
    return Image.open(io.BytesIO(data)), data


def assert_no_metadata(image: Image.Image, data: bytes) -> None:
    assert image.format == "WEBP"
    assert dict(image.getexif()) == {}
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(image.info)
    # RIFF chunks that would carry metadata, and any trace of what the original held.
    for marker in (b"EXIF", b"XMP ", b"ICCP", b"Camera X100", b"secret place", b"home"):
        assert marker not in data


def rendition_puts(s3_requests) -> list[str]:
    return [
        url for op, url in s3_requests.keys if op == "PutObject" and "/albums-renditions/" in url
    ]


def test_every_photo_gets_a_thumbnail_and_a_display_size_in_the_bucket(album, s3):
    camera_jpeg(album.path / "portrait.jpg", size=(3000, 2000), orientation=6)

    result = sync_album(album=album)

    assert (result.uploaded, result.rendered, result.not_rendered, result.status) == (
        4,
        4,
        0,
        "success",
    )
    photo = Photo.objects.get(path="portrait.jpg")
    assert (photo.renditions, photo.rendition_problem) == (SIGNATURE, "")
    assert (photo.width, photo.height) == (2000, 3000)  # as it is shown: upright
    thumb_key, display_key = rendition_keys(photo)
    assert thumb_key == f"albums-renditions/{photo.md5[:2]}/{photo.md5}/400-q80-v1.webp"
    for key, size in ((thumb_key, (267, 400)), (display_key, (1365, 2048))):
        head = s3.head(key)
        assert head["ContentType"] == "image/webp"
        assert head["CacheControl"] == "public, max-age=31536000, immutable"
        image, data = opened(s3, key)
        assert image.size == size
        assert_no_metadata(image, data)
    # Upright: orientation 6 turns the stored top-left corner to the top right.
    display, _ = opened(s3, display_key)
    display = display.convert("RGB")
    assert display.getpixel((display.width - 20, 20)) == pytest.approx(BLUE, abs=30)
    assert display.getpixel((20, 20)) == pytest.approx(RED, abs=30)
    # The three small photos of the album, never upscaled.
    small = Photo.objects.get(path="photo1.jpg")
    assert opened(s3, rendition_keys(small)[1])[0].size == (48, 32)


def test_a_camera_sized_photo_renders_from_its_file(album, s3, opened_files):
    big = camera_jpeg(album.path / "big.jpg", size=(4000, 3000), noise=True)
    assert big.stat().st_size > 1024 * 1024  # above the size read into memory

    sync_album(album=album)

    photo = Photo.objects.get(path="big.jpg")
    assert photo.renditions == SIGNATURE
    image, data = opened(s3, rendition_keys(photo)[1])
    assert image.size == (2048, 1536)
    assert_no_metadata(image, data)


@pytest.mark.parametrize(
    ("name", "write", "size"),
    [
        ("iphone.heic", "heic", (600, 900)),
        ("print.jpg", "cmyk", (900, 600)),
        ("scan.png", "png16", (900, 600)),
        ("anim.gif", "gif", (300, 200)),
        ("scan.tif", "tiff", (900, 600)),
    ],
)
def test_other_formats_render_as_srgb(album, s3, name, write, size):
    path = album.path / name
    if write == "heic":  # stored 900 x 600, turned by its EXIF orientation
        pillow_heif.register_heif_opener()
        exif = Image.Exif()
        exif[0x0112] = 6
        exif[GPS_IFD] = {1: "N", 2: (52.0, 22.0, 30.0)}
        Image.new("RGB", (900, 600), RED).save(path, "HEIF", exif=exif.tobytes())
    elif write == "cmyk":
        Image.new("CMYK", (900, 600), (0, 255, 255, 0)).save(path, "JPEG")  # red in ink
    elif write == "png16":  # 16 bits a channel, as scanners and editors write them
        path.write_bytes(png_16_bits((900, 600), (60_000, 5_000, 5_000)))
    elif write == "gif":
        frames = [Image.new("RGB", (300, 200), color) for color in (RED, BLUE)]
        frames[0].save(path, "GIF", save_all=True, append_images=frames[1:])
    else:
        Image.new("RGB", (900, 600), RED).save(path, "TIFF")

    result = sync_album(album=album)

    assert result.not_rendered == 0
    photo = Photo.objects.get(path=name)
    assert (photo.renditions, (photo.width, photo.height)) == (SIGNATURE, size)
    image, data = opened(s3, rendition_keys(photo)[1])
    assert (image.size, image.mode) == (size, "RGB")
    assert_no_metadata(image, data)
    pixel = image.getpixel((image.width // 2, image.height // 2))
    expected = {"png16": (233, 19, 19), "cmyk": (237, 28, 36)}.get(write, RED)
    assert pixel == pytest.approx(expected, abs=40)


def png(width: int, height: int, depth: int, rows: bytes) -> bytes:
    """A PNG of RGB pixels written by hand: its header says what it likes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def bomb_png() -> bytes:
    """A few KB of PNG that claims 50,000 x 50,000 pixels (7.5 GB decoded)."""
    return png(50_000, 50_000, 8, b"\x00" * (50_000 * 3 + 1) * 8)


def png_16_bits(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    row = b"\x00" + struct.pack(">HHH", *colour) * size[0]
    return png(*size, 16, row * size[1])


def test_photos_that_cannot_be_rendered_are_backed_up_and_say_why(album, s3, settings):
    settings.ALBUMS_PHOTO_EXTENSIONS = "+mov"
    good = camera_jpeg(album.path / "whole.jpg").read_bytes()
    (album.path / "cut.jpg").write_bytes(good[: len(good) // 2])
    (album.path / "bomb.png").write_bytes(bomb_png())
    (album.path / "IMG_1.CR2").write_bytes(b"raw" * 1000)
    (album.path / "clip.mov").write_bytes(b"video" * 1000)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    result = sync_album(album=album)

    assert (result.status, result.failed, result.uploaded) == ("success", 0, 8)
    assert (result.rendered, result.not_rendered) == (4, 3)
    problems = {p.path: p.error for p in result.rendition_problems}
    assert problems.pop("cut.jpg").startswith(
        "not an image Pillow can read (image file is truncated ("  # (N bytes not processed)
    )
    assert problems == {
        "bomb.png": "2,500 megapixels, more than the 178 a photo may have",
        "IMG_1.CR2": RAW_NOT_RENDERED,
    }
    problems["cut.jpg"] = Photo.objects.get(path="cut.jpg").rendition_problem
    for path, problem in problems.items():
        photo = Photo.objects.get(path=path)
        assert (photo.renditions, photo.rendition_problem) == (SIGNATURE, problem)
        assert photo.uploaded_at is not None
    video = Photo.objects.get(path="clip.mov")
    assert (video.renditions, video.rendition_problem) == ("", "")  # videos get none yet
    run = SyncRun.objects.get(pk=result.run_id)
    assert {p["path"] for p in run.rendition_problems} == set(problems)
    assert (run.rendered, run.not_rendered, run.errors) == (4, 3, [])
    # The bomb was refused from its header: nothing near 7.5 GB was ever decoded.
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak_after - peak_before < 200 * 1024  # KiB
    # Tried once: the next run neither renders nor reports them again.
    again = sync_album(album=album)
    assert (again.unchanged, again.rendered, again.not_rendered) == (8, 0, 0)


def test_the_no_op_sends_no_rendition_request(album, s3, s3_requests, opened_files):
    sync_album(album=album)
    s3_requests.reset()
    opened_files.paths.clear()

    result = sync_album(album=album)

    assert (result.unchanged, result.rendered) == (3, 0)
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}
    assert opened_files.paths == []


def test_a_moved_photo_keeps_its_renditions_without_a_new_one(album, s3, s3_requests):
    sync_album(album=album)
    before = Photo.objects.get(path="photo1.jpg")
    os.rename(album.path / "photo1.jpg", album.path / "renamed.jpg")
    s3_requests.reset()

    result = sync_album(album=album, prune=True)

    assert (result.moved, result.rendered) == (1, 0)
    assert rendition_puts(s3_requests) == []
    assert s3_requests.counts["HeadObject"] == 0
    moved = Photo.objects.get(path="renamed.jpg")
    assert (moved.pk, moved.renditions) == (before.pk, SIGNATURE)
    assert set(rendition_keys(moved)) <= set(s3.object_keys())


def test_the_same_photo_in_two_albums_is_rendered_once(album, s3, s3_requests, photos_root):
    sync_album(album=album)
    copy = photos_root / "Copies" / "photo1.jpg"
    copy.parent.mkdir()
    copy.write_bytes((album.path / "photo1.jpg").read_bytes())
    os.utime(copy, ns=(1_700_000_000_000_000_000,) * 2)
    other = Album.objects.create(name="Copies", slug="copies", folder="Copies")
    s3_requests.reset()

    result = sync_album(album=other)

    assert (result.uploaded, result.rendered) == (1, 0)
    assert rendition_puts(s3_requests) == []
    assert Photo.objects.get(album=other).renditions == SIGNATURE


def test_prune_removes_renditions_only_when_no_album_has_the_content(album, s3, photos_root):
    copy = photos_root / "Copies" / "photo1.jpg"
    copy.parent.mkdir()
    copy.write_bytes((album.path / "photo1.jpg").read_bytes())
    write_photo(photos_root / "Copies" / "own.jpg", color=(1, 2, 3))
    other = Album.objects.create(name="Copies", slug="copies", folder="Copies")
    list(sync_albums([album, other]))
    photo = Photo.objects.get(album=album, path="photo1.jpg")
    keys = rendition_keys(photo)
    os.remove(album.path / "photo1.jpg")

    first = sync_album(album=album, prune=True)

    assert (first.pruned, first.renditions_pruned) == (1, 0)  # "Copies" still has it
    assert set(keys) <= set(s3.object_keys())
    os.remove(copy)
    second = sync_album(album=other, prune=True)
    assert (second.pruned, second.renditions_pruned) == (1, 1)
    assert not set(keys) & set(s3.object_keys())
    others = Photo.objects.filter(album=album)
    assert all(set(rendition_keys(p)) <= set(s3.object_keys()) for p in others)


def test_photos_synced_before_renditions_get_them_a_few_per_run(album, s3, settings):
    settings.ALBUMS_RENDITIONS = False
    sync_album(album=album)
    assert set(Photo.objects.values_list("renditions", flat=True)) == {""}
    settings.ALBUMS_RENDITIONS = True
    settings.ALBUMS_RENDITIONS_PER_RUN = 2

    first = sync_album(album=album)
    second = sync_album(album=album)
    third = sync_album(album=album)

    assert [(r.unchanged, r.rendered) for r in (first, second, third)] == [
        (3, 2),
        (3, 1),
        (3, 0),
    ]
    assert set(Photo.objects.values_list("renditions", flat=True)) == {SIGNATURE}


def test_new_settings_make_new_renditions_beside_the_old(album, s3, settings):
    sync_album(album=album, render_all=True)
    old = {key for key in s3.object_keys() if key.startswith("albums-renditions/")}
    settings.ALBUMS_RENDITION_SIZES = "200,1000"

    result = sync_album(album=album, render_all=True)

    assert result.rendered == 3
    new = {key for key in s3.object_keys() if key.startswith("albums-renditions/")} - old
    assert len(new) == 6 and all("/200-q80-v1.webp" in k or "/1000-q80-v1.webp" in k for k in new)
    assert set(Photo.objects.values_list("renditions", flat=True)) == {"v1-webp-q80-200-1000"}


def test_a_no_op_over_many_albums_lists_no_rendition(album, s3, s3_requests, photos_root):
    write_photo(photos_root / "Winter" / "a.jpg")
    write_photo(photos_root / "Winter" / "b.jpg", color=(9, 9, 9))
    winter = Album.objects.create(name="Winter", slug="winter", folder="Winter")
    list(sync_albums([album, winter]))
    assert len([k for k in s3.object_keys() if k.startswith("albums-renditions/")]) == 10
    s3_requests.reset()

    outcomes = list(sync_albums([album, winter]))

    assert [o.result.unchanged for o in outcomes] == [3, 2]
    assert dict(s3_requests.counts) == {"ListObjectsV2": 1}  # the albums' prefix: photos only
    listed = [url for op, url in s3_requests.keys if op == "ListObjectsV2"]
    assert "prefix=albums%2F" in listed[0]


def test_renditions_of_a_file_that_changed_while_rendered_are_not_sent(album, s3):
    from django.core.files.storage import storages

    from albums.storage import STORAGE_ALIAS, open_bucket
    from albums.sync.bucket.renditions import NONE_YET, ensure_renditions

    bucket = open_bucket(storages[STORAGE_ALIAS], workers=2)
    spec = RenditionSpec((400, 2048), "webp", 80)
    photo = (album.path / "photo1.jpg").read_bytes()

    changed = ensure_renditions(
        bucket, spec, md5="0" * 32, source=photo, content_type="image/jpeg", unchanged=lambda: False
    )
    kept = ensure_renditions(bucket, spec, md5="1" * 32, source=photo, content_type="image/jpeg")

    assert changed == NONE_YET  # the record says none: the next run renders it again
    assert kept.made and kept.signature == SIGNATURE
    assert s3.object_keys() == sorted(spec.keys("1" * 32))
