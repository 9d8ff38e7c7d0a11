"""Pieces of the admin that keep its pages fast on a real library (issue 16).

Measured by bench/admin_scale.py on 1,000 albums, 1,000,000 photos and 20,000 runs. Each
replaces a query that reads every photo with one that an index answers: counts stop early,
the album filter probes each album once, the date drill-down jumps from one period to the
next, and a search goes through trigram indexes (migration 0009 on PostgreSQL), once.
"""

import json
from datetime import datetime, timedelta

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal

# A list counts its rows exactly up to this many; above it, PostgreSQL's estimate is shown.
EXACT_COUNT_LIMIT = 10_000
# A page that skips this many rows or more reads its rows' ids first (see page()).
DEFERRED_JOIN_OFFSET = 1_000


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts a huge list row by row, nor reads whole rows it skips.

    Up to EXACT_COUNT_LIMIT rows it counts exactly (a count that stops at the limit). Above
    it, on PostgreSQL, it takes the planner's estimate for the same query, so "1,000,000
    photos" may read "998,412 photos"; elsewhere (SQLite, one machine) it counts exactly.

    A deep page (DEFERRED_JOIN_OFFSET rows down or more) is read in two steps, a "deferred
    join": the ids of its rows, then those rows. The database still walks every row before
    the page, but along an index that holds the ids rather than through the table: for the
    photo list, migration 0011's on PostgreSQL; on SQLite, the (album, path) index, whose
    entries end with the rowid, which is the id.
    """

    short = False  # True once counted: at most EXACT_COUNT_LIMIT rows

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        counted = queryset.order_by()[: EXACT_COUNT_LIMIT + 1].count()
        self.short = counted <= EXACT_COUNT_LIMIT
        if counted <= EXACT_COUNT_LIMIT or connections[queryset.db].vendor != "postgresql":
            return counted if counted <= EXACT_COUNT_LIMIT else super().count
        plan = json.loads(queryset.order_by().explain(format="json"))
        return max(int(plan[0]["Plan"]["Plan Rows"]), counted)

    def page(self, number):
        """Django's page, with the same rows in the same order (the admin's ordering is
        total: it adds the pk when the fields it orders by are not unique)."""
        page = super().page(number)
        skipped = page.start_index() - 1
        if not isinstance(self.object_list, QuerySet) or skipped < DEFERRED_JOIN_OFFSET:
            return page
        ids = list(page.object_list.values_list("pk", flat=True))  # the same slice, ids only
        return self._get_page(self.object_list.filter(pk__in=ids), page.number, self)


def with_indexed_dates(queryset: QuerySet) -> "IndexedDatesQuerySet":
    """`queryset` as an IndexedDatesQuerySet (for a ModelAdmin's get_queryset)."""
    return IndexedDatesQuerySet(model=queryset.model, query=queryset.query, using=queryset.db)


class RelatedWithRowsFilter(admin.RelatedOnlyFieldListFilter):
    """Django's "related only" filter (the albums that have photos), asking each album with
    one index probe (EXISTS) instead of reading every photo (SELECT DISTINCT album_id)."""

    def field_choices(self, field, request, model_admin):
        related = field.remote_field.model
        rows = model_admin.model._default_manager.filter(**{field.name: OuterRef("pk")})
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False,
            limit_choices_to={"pk__in": related._default_manager.filter(Exists(rows))},
            ordering=ordering,
        )


class IndexedDatesQuerySet(QuerySet):
    """A queryset whose date drill-down (the admin's date_hierarchy) does not read every row.

    `datetimes(field, "year")` over a million photos is a SELECT DISTINCT over all of them.
    Here each year, month or day that has rows is found by asking for the first row at or
    after the start of the next period (an index on the field answers each at once): as
    many queries as there are periods with rows, plus one. Same answer, same time zone.

    That walk along the date index is quick when the rows are many; for a short list (a
    search, the photos that failed) it could pass most of the table before it meets one,
    so a list known to be short (`few_rows()`) reads its dates in one query instead, and
    answers the drill-down's Min/Max from them too.
    """

    _few_rows = False

    def few_rows(self):
        clone = self._chain()
        clone._few_rows = True
        return clone

    def _clone(self):
        clone = super()._clone()
        clone._few_rows = self._few_rows
        return clone

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None, is_dst=None):
        if kind not in ("year", "month", "day"):
            return super().datetimes(field_name, kind, order, tzinfo, is_dst)
        zone = tzinfo or timezone.get_current_timezone()
        if self._few_rows:
            starts = {
                _period_start(value.astimezone(zone), kind) for value in self._dates(field_name)
            }
            return sorted(starts, reverse=order != "ASC")
        rows = (
            self.filter(**{f"{field_name}__isnull": False})
            .order_by(field_name)
            .values_list(field_name, flat=True)
        )
        found = []
        moment = rows.first()
        while moment is not None:
            start = _period_start(moment.astimezone(zone), kind)
            found.append(start)
            moment = rows.filter(**{f"{field_name}__gte": _next_period(start, kind)}).first()
        return found if order == "ASC" else found[::-1]

    def aggregate(self, *args, **kwargs):
        """Min and Max of one field (the drill-down's first question): from the dates of a
        short list, else as the first and the last row along the field's index (as
        `datetimes` walks it), not an aggregate over every row of a long list; anything
        else as usual."""
        fields = {_min_max_field(expression) for expression in kwargs.values()}
        if args or len(fields) != 1 or None in fields:
            return super().aggregate(*args, **kwargs)
        field = fields.pop()
        if self._few_rows:
            values = self._dates(field)
            return {
                name: (min if isinstance(expression, Min) else max)(values, default=None)
                for name, expression in kwargs.items()
            }
        rows = self.filter(**{f"{field}__isnull": False}).values_list(field, flat=True)
        return {
            name: rows.order_by(field if isinstance(expression, Min) else f"-{field}").first()
            for name, expression in kwargs.items()
        }

    def _dates(self, field_name) -> list:
        """The field's values in this short list, read once per queryset (the drill-down
        asks for Min/Max, then for the periods)."""
        read = self.__dict__.setdefault("_dates_read", {})
        if field_name not in read:
            values = self.order_by().filter(**{f"{field_name}__isnull": False})
            read[field_name] = list(values.values_list(field_name, flat=True))
        return read[field_name]


def _min_max_field(expression) -> str | None:
    """The field name of Min("field") or Max("field") without a filter, else None."""
    if not isinstance(expression, Min | Max) or expression.filter is not None:
        return None
    source = expression.get_source_expressions()[0]
    return source.name if isinstance(source, F) else None


def _period_start(moment: datetime, kind: str) -> datetime:
    if kind == "year":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if kind == "month":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_period(start: datetime, kind: str) -> datetime:
    """The start of the period after `start`, in its time zone (a new local date: DST-safe)."""
    if kind == "year":
        following = start.date().replace(year=start.year + 1)
    elif kind == "month":
        following = start.date().replace(
            year=start.year + start.month // 12, month=start.month % 12 + 1
        )
    else:
        following = start.date() + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=start.tzinfo)


def search_terms(search_term: str) -> list[str]:
    """The words of an admin search, quoted phrases kept whole (as Django's own search)."""
    terms = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit:
            terms.append(bit)
    return terms


# A search that finds at most this many rows is run once, for their ids (see searched_once).
FEW_MATCHES = 1_000


def searched_once(unsearched: QuerySet, found: QuerySet) -> QuerySet:
    """`found` (`unsearched` narrowed by a search) as the ids it holds, when they are few.

    A changelist evaluates its queryset three times: to count it, for the page's rows and
    for the date drill-down. A search on a million photos is answered by trigram indexes
    at some 70 ms each time; as a list of at most FEW_MATCHES ids, the search runs once and
    the three read rows by primary key. More matches than that keep the search itself (one
    more query, which stops at FEW_MATCHES + 1 rows).
    """
    ids = list(found.order_by().values_list("pk", flat=True)[: FEW_MATCHES + 1])
    if len(ids) > FEW_MATCHES:
        return found
    return unsearched.filter(pk__in=ids)


def search_by_each_term(queryset: QuerySet, search_term: str, match) -> QuerySet:
    """Rows matching every word of the search; `match(term)` gives the Q for one word.

    Django's admin search ORs its fields in one condition across joins, which PostgreSQL
    can only answer by reading every row; a `match` that keeps each alternative on the
    table itself (a related model through `__in`) lets indexes answer each one.
    """
    condition = Q()
    for term in search_terms(search_term):
        condition &= match(term)
    return queryset.filter(condition)
