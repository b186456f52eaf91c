"""The charts of the projects page and a project's charts page, drawn on the server as SVG.

Cumulative flow: for each of the last N days, the number of tasks in each state at the end of
that day, stacked in SPEC order. A task's state on a day is the `to_state` of its last TaskEvent
up to then; a task with no such event (made outside the services) counts in its current state
from its creation.
Cycle time: from a task's first move to in_progress to its first move to production, for the
tasks that reached production in the range (median and 85th percentile). Throughput: how many
tasks reached production in each week of the range. Both read the same state-change events.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone

from tasks.models import Task, TaskEvent
from tasks.states import TaskState

DAYS = 14
WIDTH = 280
HEIGHT = 90


@dataclass
class Band:
    state: str
    label: str
    points: str  # SVG polygon points
    latest: int


@dataclass
class FlowChart:
    width: int
    height: int
    days: list[str]
    bands: list[Band]
    peak: int


RANGES = (14, 30, 90)  # the charts page's date ranges, in days
MIN_FINISHED = 3  # fewer finished tasks than this: no cycle time, and the page says so


def _day_ends(now: datetime, days: int = DAYS) -> list[datetime]:
    today_end = timezone.localtime(now).replace(hour=23, minute=59, second=59, microsecond=0)
    return [today_end - timedelta(days=days - 1 - i) for i in range(days)]


def cumulative_flow(
    project_ids: list[int], *, now: datetime | None = None, days: int = DAYS
) -> dict[int, FlowChart]:
    """One chart per project, from two queries whatever the number of projects."""
    now = now or timezone.now()
    ends = _day_ends(now, days)
    # Walk every state-setting event in time order; per project, per day, a snapshot of the
    # state of each task at the end of that day.
    events = (
        TaskEvent.objects.filter(task__project_id__in=project_ids, created_at__lte=ends[-1])
        .exclude(to_state="")
        .order_by("created_at", "id")
        .values_list("task__project_id", "task_id", "to_state", "created_at")
    )
    with_events: set[int] = set()
    per_day: dict[int, list[dict[str, int]]] = {
        pid: [defaultdict(int) for _ in ends] for pid in project_ids
    }
    state_of: dict[int, dict[int, str]] = defaultdict(dict)
    timeline = list(events)
    # Snapshots are taken as the walk passes each day's end.
    index = 0
    for day, end in enumerate(ends):
        while index < len(timeline) and timeline[index][3] <= end:
            project_id, task_id, to_state, _ = timeline[index]
            state_of[project_id][task_id] = to_state
            with_events.add(task_id)
            index += 1
        for project_id, states in state_of.items():
            for state in states.values():
                per_day[project_id][day][state] += 1
    silent = Task.objects.filter(project_id__in=project_ids).exclude(pk__in=with_events)
    for project_id, state, created_at in silent.values_list("project_id", "state", "created_at"):
        for day, end in enumerate(ends):
            if created_at <= end:
                per_day[project_id][day][state] += 1
    return {pid: _draw(per_day[pid], ends) for pid in project_ids}


def _draw(per_day: list[dict[str, int]], ends: list[datetime]) -> FlowChart:
    peak = max((sum(d.values()) for d in per_day), default=0) or 1
    step = WIDTH / (len(ends) - 1)
    below = [0] * len(ends)
    bands: list[Band] = []
    # Finished states at the bottom, so the growing "done" area reads like a classic CFD.
    for state in reversed(TaskState.values):
        above = [below[i] + per_day[i].get(state, 0) for i in range(len(ends))]
        top = [f"{i * step:.1f},{HEIGHT - above[i] * HEIGHT / peak:.1f}" for i in range(len(ends))]
        bottom = [
            f"{i * step:.1f},{HEIGHT - below[i] * HEIGHT / peak:.1f}"
            for i in reversed(range(len(ends)))
        ]
        bands.append(
            Band(
                state=state,
                label=TaskState(state).label,
                points=" ".join(top + bottom),
                latest=per_day[-1].get(state, 0),
            )
        )
        below = above
    return FlowChart(
        width=WIDTH,
        height=HEIGHT,
        days=[e.strftime("%b %d") for e in ends],
        bands=list(reversed(bands)),
        peak=peak,
    )


@dataclass
class Delivery:
    """Cycle time and weekly throughput of one project over a range of days."""

    days: int
    finished: int
    cycle_median_hours: float | None  # None: fewer than MIN_FINISHED finished tasks
    cycle_p85_hours: float | None
    weeks: list[tuple[str, int]]  # (Monday of the week, tasks that reached production)
    has_history: bool  # any state change at all in the range


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `share` of them at or
    below it (the 85th of 1..10 is 9)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def delivery(project_id: int, *, days: int, now: datetime | None = None) -> Delivery:
    """Cycle time and weekly throughput from the state-change events (one query)."""
    now = now or timezone.now()
    ends = _day_ends(now, days)
    start = ends[0] - timedelta(days=1)
    moves = (
        TaskEvent.objects.filter(
            task__project_id=project_id,
            kind="status_changed",
            to_state__in=(TaskState.IN_PROGRESS, TaskState.PRODUCTION),
            created_at__lte=ends[-1],
        )
        .order_by("created_at", "id")
        .values_list("task_id", "to_state", "created_at")
    )
    started: dict[int, datetime] = {}
    finished: dict[int, datetime] = {}
    for task_id, to_state, at in moves:
        if to_state == TaskState.IN_PROGRESS:
            started.setdefault(task_id, at)
        elif at > start:
            finished.setdefault(task_id, at)
    hours = [
        (done - started[task_id]).total_seconds() / 3600
        for task_id, done in finished.items()
        if task_id in started and started[task_id] <= done
    ]
    enough = len(hours) >= MIN_FINISHED
    first_monday = (ends[0] - timedelta(days=ends[0].weekday())).date()
    per_week: dict[date, int] = {}
    monday = first_monday
    while monday <= ends[-1].date():
        per_week[monday] = 0
        monday += timedelta(days=7)
    for done in finished.values():
        local = timezone.localtime(done).date()
        per_week[local - timedelta(days=local.weekday())] += 1
    any_change = TaskEvent.objects.filter(
        task__project_id=project_id, created_at__gt=start, created_at__lte=ends[-1]
    ).exclude(to_state="")
    return Delivery(
        days=days,
        finished=len(finished),
        cycle_median_hours=percentile(hours, 0.5) if enough else None,
        cycle_p85_hours=percentile(hours, 0.85) if enough else None,
        weeks=[(m.strftime("%b %d"), n) for m, n in sorted(per_week.items())],
        has_history=any_change.exists(),
    )
