"""Database work stays bounded as albums grow: a fixed number of queries per chunk."""

import pytest

from albums.models import Album, Photo
from albums.sync import sync_album

pytestmark = pytest.mark.django_db
PHOTOS = 4000
QUERY_BUDGET = PHOTOS // 500 + 30  # the target: photos / 500 + 30 per run


@pytest.fixture
def big_album(photos_root):
    folder = photos_root / "Big"
    for number in range(PHOTOS):
        path = folder / f"{number // 100:02}" / f"{number:05}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"photo %05d" % number)
    return Album.objects.create(name="Big", slug="big", folder="Big")


def test_first_and_second_runs_stay_within_the_query_budget(
    big_album, local_bucket, django_assert_max_num_queries
):
    with django_assert_max_num_queries(QUERY_BUDGET):
        first = sync_album(album=big_album, workers=4, batch_size=50)
    with django_assert_max_num_queries(QUERY_BUDGET):
        second = sync_album(album=big_album, workers=4, batch_size=50)

    assert (first.uploaded, second.unchanged) == (PHOTOS, PHOTOS)
    assert Photo.objects.count() == PHOTOS


def test_a_run_with_many_orphans_and_reuploads_stays_within_budget(
    big_album, local_bucket, django_assert_max_num_queries
):
    sync_album(album=big_album, workers=4, batch_size=50)
    for path in sorted(big_album.path.rglob("*.jpg"))[: PHOTOS // 2]:
        path.unlink()
    for path in sorted(local_bucket.rglob("*.jpg"))[PHOTOS // 2 :]:
        path.unlink()  # the other half is gone from the bucket

    with django_assert_max_num_queries(QUERY_BUDGET):
        result = sync_album(album=big_album, workers=4, batch_size=50)

    assert (result.removed, result.reuploaded) == (PHOTOS // 2, PHOTOS // 2)
