"""The photos: what each photo is, where it stands after the last sync, its preview."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import F, OuterRef, Q, Subquery
from django.http import FileResponse, Http404
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import Album, Photo, SyncRun
from ..previews import NoPreview, bucket_url, has_preview, rendition, thumbnail
from ..renditions.links import media_urls, rendition_keys
from .display import last_run
from .large_lists import (
    EstimatedCountPaginator,
    RelatedWithRowsFilter,
    search_by_each_term,
    searched_once,
    with_indexed_dates,
)


class PhotoStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("uploaded", "Uploaded by photosite"),
            ("found", "Found already in the bucket"),
            ("unverified", "Not verified by the album's last sync"),
            ("excluded", "Excluded by a pattern (kept, not synced)"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "uploaded":
                return queryset.filter(uploaded_at__isnull=False)
            case "found":
                return queryset.filter(uploaded_at__isnull=True)
            case "excluded":
                return queryset.filter(excluded_at__isnull=False)
            case "unverified":
                return queryset.filter(_verified_before_last_run())
        return queryset


def _verified_before_last_run() -> Q:
    """Photos last verified before their album's last finished real run started.

    Found without reading every photo (issues 16 and 28): one query finds the albums that
    have such photos (each album's oldest verified_at, from the (album, verified_at) index,
    against its last run) and those runs; the photos are then joined to their album's run
    and read from that index, album by album, from its start up to the run's start. So the
    database reads only the photos the filter shows, however many albums hold them.
    """
    oldest = Photo.objects.filter(album=OuterRef("pk")).order_by("verified_at")
    runs = (
        Album.objects.annotate(
            run=last_run("pk"),
            started=last_run("started_at"),
            oldest=Subquery(oldest.values("verified_at")[:1]),
        )
        .filter(oldest__lt=F("started"))
        .values_list("run", flat=True)
    )
    # One filter() call: both conditions are on the same run, the album's last (one per
    # album, so no photo is listed twice).
    return Q(album__sync_runs__in=list(runs), verified_at__lt=F("album__sync_runs__started_at"))


class PhotoFailedFilter(admin.SimpleListFilter):
    title = "failed"
    parameter_name = "failed"

    def lookups(self, request, model_admin):
        return [("yes", "Failed in the album's last sync")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        last_runs = Album.objects.annotate(run=last_run("pk")).values("run")
        failed = Q(pk__in=[])
        for album_id, errors in SyncRun.objects.filter(pk__in=last_runs, failed__gt=0).values_list(
            "album_id", "errors"
        ):
            failed |= Q(album_id=album_id, path__in=[error["path"] for error in errors])
        return queryset.filter(failed)


class NoRenditionFilter(admin.SimpleListFilter):
    title = "web renditions"
    parameter_name = "renditions"

    def lookups(self, request, model_admin):
        return [("problem", "Could not be made")]

    def queryset(self, request, queryset):
        if self.value() == "problem":  # a partial index holds just these (migration 0013)
            return queryset.exclude(rendition_problem="")
        return queryset


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = [
        "preview",
        "path",
        "album",
        "file_size",
        "dimensions",
        "taken_at",
        "uploaded_at",
        "verified_at",
    ]
    list_display_links = ["preview", "path"]
    list_filter = [
        ("album", RelatedWithRowsFilter),
        PhotoStateFilter,
        PhotoFailedFilter,
        NoRenditionFilter,
    ]
    list_select_related = ["album"]
    search_fields = ["path", "key", "album__name"]  # see get_search_results
    date_hierarchy = "taken_at"
    # At a million photos (issue 16): the order of the (album, path) index, no full count.
    ordering = ["album_id", "path"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # No "Show counts" (issue 28): Django counts every choice of every filter over the whole
    # list, one COUNT per album among them: past a minute at a million photos.
    show_facets = admin.ShowFacets.NEVER
    # Every row has a thumbnail and two links: rendering a row costs more than finding it
    # (half the server time of a page at 100 rows), and a browser loads every thumbnail.
    list_per_page = 50
    fields = [
        "large_preview", "album", "path", "key", "bucket_link", "file_size", "dimensions",
        "content_type", "taken_at", "modified_at", "uploaded_at", "verified_at", "excluded_at",
        "created_at", "renditions", "rendition_problem",
    ]  # fmt: skip
    readonly_fields = fields

    def get_urls(self):
        # cacheable: the image URL carries the file's mtime, so a browser may keep it.
        view = self.admin_site.admin_view(self.thumbnail_view, cacheable=True)
        return [
            path("<path:object_id>/thumbnail/", view, name="albums_photo_thumbnail"),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return with_indexed_dates(super().get_queryset(request))

    def get_ordering(self, request):
        """By date taken inside a year, month or day of the drill-down: the order a person
        expects there, and the one the taken_at index gives at once (in (album, path) order
        the database would pass every photo of the albums before that year's first)."""
        if any(name.startswith(f"{self.date_hierarchy}__") for name in request.GET):
            return [self.date_hierarchy, "album_id", "path"]
        return super().get_ordering(request)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if changelist.paginator.short:  # the date drill-down reads a short list's dates at once
            changelist.queryset = changelist.queryset.few_rows()
        _link_thumbnails(changelist.result_list)  # the page's URLs in one cache round trip
        return changelist

    def get_search_results(self, request, queryset, search_term):
        """Photos whose path or key contains each word, or whose album's name does: the
        fields of `search_fields`, each answered by an index (trigram indexes on
        PostgreSQL, migration 0009) rather than one OR across the album join. The few
        matching albums are looked up first, so the database sees a list of ids."""

        def match(term):
            albums = Album.objects.filter(name__icontains=term).values_list("pk", flat=True)
            return Q(path__icontains=term) | Q(key__icontains=term) | Q(album_id__in=list(albums))

        found = search_by_each_term(queryset, search_term, match)
        return (searched_once(queryset, found) if search_term.strip() else found), False

    def has_add_permission(self, request):
        return False  # photos are recorded by syncs

    def has_change_permission(self, request, obj=None):
        return False

    # Columns and fields

    @admin.display(description="Preview")
    def preview(self, photo: Photo):
        return self._img(photo, 60)

    @admin.display(description="Preview")
    def large_preview(self, photo: Photo):
        return self._img(photo, 240)

    @admin.display(description="Size", ordering="size")
    def file_size(self, photo: Photo):
        return filesizeformat(photo.size)

    @admin.display(description="Dimensions")
    def dimensions(self, photo: Photo):
        return (
            f"{photo.width} \N{MULTIPLICATION SIGN} {photo.height}"
            if photo.width and photo.height
            else "—"
        )

    @admin.display(description="In the bucket")
    def bucket_link(self, photo: Photo):
        url = bucket_url(photo)
        if url is None:
            return format_html("{} <small>(local folder bucket: no link)</small>", photo.key)
        return format_html(
            '<a href="{}" rel="noreferrer">Open the object</a> <small>(link valid for an hour)</small>',
            url,
        )

    # Views

    def thumbnail_view(self, request, object_id):
        photo = self.get_object(request, unquote(object_id))
        if photo is None or not self.has_view_permission(request, photo):
            raise Http404
        # Its thumbnail rendition from the bucket (a local-folder bucket has no URL of its
        # own), else one made from the local file.
        found = rendition(photo)
        try:
            image = found or thumbnail(photo).open("rb")
        except NoPreview as exc:
            raise Http404(str(exc)) from None
        response = FileResponse(image, content_type="image/webp" if found else "image/jpeg")
        response["Cache-Control"] = "private, max-age=86400"
        return response

    # Helpers

    def _img(self, photo: Photo, pixels: int):
        if not has_preview(photo):  # a video or a sidecar: a neutral icon, no failed request
            return format_html(
                '<span class="file-icon" title="{}" style="display: inline-block; '
                "min-width: {}px; padding: 2px 4px; border: 1px solid var(--border-color); "
                "border-radius: 3px; color: var(--body-quiet-color); text-align: center; "
                'font-size: 0.75rem">{}</span>',
                photo.content_type or "file",
                min(pixels, 60),
                (photo.path.rsplit(".", 1)[-1] if "." in photo.path else "file").upper(),
            )
        if not hasattr(photo, "thumbnail_url"):
            _link_thumbnails([photo])
        url = photo.thumbnail_url
        return format_html(
            '<img src="{}" alt="" loading="lazy" style="max-width: {}px; max-height: {}px">',
            url,
            pixels,
            pixels,
        )


def _link_thumbnails(photos) -> None:
    """Set `thumbnail_url` on each photo: its thumbnail rendition straight from the bucket
    or the CDN (a key that never changes), else this admin's thumbnail view, with a version
    (its content, or its file's) that lets a browser keep it."""
    keys = {}
    for photo in photos:
        found = rendition_keys(photo.md5, photo.renditions, photo.rendition_problem)
        if found:
            keys[photo.pk] = found[0]
    urls = (media_urls(list(keys.values())) if keys else None) or {}
    for photo in photos:
        key = keys.get(photo.pk)
        if key in urls:
            photo.thumbnail_url = urls[key]
        else:
            version = photo.md5 if key else photo.mtime_ns
            view = reverse("admin:albums_photo_thumbnail", args=[photo.pk])
            photo.thumbnail_url = f"{view}?v={version}"
