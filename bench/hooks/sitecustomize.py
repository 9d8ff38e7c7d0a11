"""Counts a Django process's SQL queries for the benchmark, without touching app code.

Only on the benchmark's PYTHONPATH (bench/hooks), and only active when
BENCH_QUERY_COUNT_FILE names a file: every connection Django opens gets an execute wrapper
that counts `execute` and `executemany` calls by their first SQL word, and the counts are
written there as JSON at exit.
"""

import atexit
import json
import os
from collections import Counter

_target = os.environ.get("BENCH_QUERY_COUNT_FILE")

if _target:
    from django.db.backends.signals import connection_created

    _queries = Counter()

    def _count(execute, sql, params, many, context):
        _queries[str(sql).lstrip().split(" ", 1)[0].upper()] += 1
        return execute(sql, params, many, context)

    def _install(sender, connection, **kwargs):
        if _count not in connection.execute_wrappers:
            connection.execute_wrappers.append(_count)

    def _write():
        with open(_target, "w") as file:
            json.dump({"total": _queries.total(), "kinds": _queries}, file)

    connection_created.connect(_install, weak=False, dispatch_uid="bench_query_count")
    atexit.register(_write)
