"""The cumulative-flow chart of the projects page, drawn on the server as SVG.

For each of the last 14 days, the number of tasks in each state at the end of that day, stacked
in SPEC order. A task's state on a day is the `to_state` of its last TaskEvent up to then; a task
with no such event (made outside the services) counts in its current state from its creation.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def _day_ends(now: datetime) -> list[datetime]:
    today_end = timezone.localtime(now).replace(hour=23, minute=59, second=59, microsecond=0)
    return [today_end - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def cumulative_flow(project_ids: list[int], *, now: datetime | None = None) -> dict[int, FlowChart]:
    """One chart per project, from two queries whatever the number of projects."""
    now = now or timezone.now()
    ends = _day_ends(now)
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
