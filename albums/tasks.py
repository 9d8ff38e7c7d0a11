"""django-q2 tasks. They take ids (arguments are pickled; an instance would be stale) and
call the sync service, which records every outcome on the run.

Never name a parameter timeout, group, hook, sync or cached: async_task takes those.
"""

from .sync import queue_scheduled_syncs, run_queued_sync, run_queued_syncs


def run_sync(run_id: int) -> dict | None:
    """Run the queued SyncRun `run_id`; its result as a dict, or None if it was no longer
    queued (a task delivered twice syncs once)."""
    result = run_queued_sync(run_id)
    return None if result is None else result.as_dict()


def run_syncs(run_ids: list[int]) -> dict:
    """Run the queued syncs `run_ids` as one run over their albums (the schedule, the
    admin's bulk action, the API over many albums); how many ended in each status. Runs
    no longer queued (a task delivered twice) are left alone."""
    return run_queued_syncs(run_ids)


def sync_due_albums() -> list[int]:
    """The schedule's task: queue a run for every album synced on schedule and free; the
    ids of the runs."""
    return [run.pk for run in queue_scheduled_syncs()]
