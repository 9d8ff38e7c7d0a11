"""Many rows' fields written at once, for the bookkeeping of large runs."""

import copy
from collections.abc import Sequence

from django.db import connections, router
from django.db.models import Model

CREATE_CHUNK = 500  # rows per INSERT of create_for_each


def update_each(model: type[Model], objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of each of `objs` to its row: one statement, run for every row.

    Where building an ORM update() for each row, or bulk_update()'s CASE for each column,
    costs far more CPU than the statements themselves: storing the outcomes of a no-op over
    2,000 albums spent a quarter of its time there, recording 1,000 moved photos over half.
    Values are prepared by each field as the ORM prepares them for a save.
    """
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    # Names from the model's own metadata, quoted; every value a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
        + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def create_for_each(prototype: Model, field_name: str, targets: Sequence[Model]) -> list[Model]:
    """Rows like `prototype` (a new instance), one for each of `targets` in its foreign key
    `field_name`, as saved instances in the order of `targets` (a target whose own row is
    gone gets none).

    One INSERT ... SELECT over the targets' table for each chunk, its values prepared once:
    bulk_create() prepares every field of every object, which for the 2,000 runs a no-op
    over 2,000 albums starts cost more CPU than the rest of their bookkeeping. A database
    that cannot return the new ids of an INSERT (SQLite before 3.35, as on RHEL 9) gets one
    INSERT for each row, whose id it does return.
    """
    model = type(prototype)
    connection = connections[router.db_for_write(model)]
    foreign_key = model._meta.get_field(field_name)

    def like(target: Model) -> Model:
        obj = copy.copy(prototype)
        setattr(obj, field_name, target)
        return obj

    if not connection.features.can_return_rows_from_bulk_insert:
        objs = [like(target) for target in targets]
        for obj in objs:
            obj.save(force_insert=True, using=connection.alias)
        return objs
    meta, quote = model._meta, connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if field not in (meta.pk, foreign_key)]
    values = [
        field.get_db_prep_save(field.pre_save(prototype, add=True), connection) for field in fields
    ]
    target_meta = foreign_key.related_model._meta
    columns = ", ".join(quote(field.column) for field in [foreign_key, *fields])
    target_pk = f"t.{quote(target_meta.pk.column)}"
    created: dict[int, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(targets), CREATE_CHUNK):
            chunk = [target.pk for target in targets[start : start + CREATE_CHUNK]]
            # Names from the models' own metadata, quoted; every value a parameter.
            sql = (
                f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
                f"SELECT {target_pk}, {', '.join(['%s'] * len(values))} "
                f"FROM {quote(target_meta.db_table)} t "
                f"WHERE {target_pk} IN ({', '.join(['%s'] * len(chunk))}) "
                f"RETURNING {quote(meta.pk.column)}, {quote(foreign_key.column)}"
            )
            cursor.execute(sql, [*values, *chunk])
            created.update((target_id, pk) for pk, target_id in cursor.fetchall())
    objs = [like(target) for target in targets if target.pk in created]
    for obj in objs:
        obj.pk = created[getattr(obj, foreign_key.attname)]
        obj._state.adding, obj._state.db = False, connection.alias
    return objs
