"""Reads for the board and the projects page: each one a fixed number of queries.

The board renders every card from one query: the agent comes in with `select_related`, and the
badges (open questions, unseen feedback, subtask progress, unmet dependencies) are correlated
subqueries, so the query count does not grow with the number of tasks.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from deployments.models import Deployment, Environment, Release
from projects.models import Project
from tasks import rules
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.states import DEPENDENCY_MET_STATES, TaskState

# Columns in SPEC §5 order.
COLUMNS: list[tuple[str, str]] = [(s.value, s.label) for s in TaskState]
CARD_ORDER = ("-priority", "position", "created_at", "id")
# Cards a column shows before "show more": what a person scans; the counts stay exact.
PAGE_SIZE = 50


def _count_subquery(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("parent").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def board_cards(*, project_id: int) -> QuerySet[Task]:
    """Every task of the project with what its card shows, in column order."""
    subtasks = Task.objects.filter(parent=OuterRef("pk")).exclude(state=TaskState.CANCELLED)
    return (
        Task.objects.filter(project_id=project_id)
        .select_related("assigned_agent")
        .only(
            "id",
            "project_id",
            "title",
            "state",
            "priority",
            "position",
            "pr_url",
            "pr_number",
            "preview_url",
            "created_at",
            "state_changed_at",
            "assigned_agent__id",
            "assigned_agent__name",
            "assigned_agent__status",
        )
        .annotate(
            open_questions=Exists(
                TaskQuestion.objects.filter(task=OuterRef("pk"), answered_at__isnull=True)
            ),
            unseen_feedback=Exists(
                TaskFeedback.objects.filter(task=OuterRef("pk"), seen_at__isnull=True)
            ),
            subtasks_total=_count_subquery(subtasks),
            subtasks_done=_count_subquery(subtasks.filter(state__in=DEPENDENCY_MET_STATES)),
            blocked=rules.unmet_dependencies_q(),
            preview_status=Subquery(
                Deployment.objects.filter(task=OuterRef("pk"), environment=Environment.PREVIEW)
                .order_by("-id")
                .values("status")[:1]
            ),
        )
        .order_by(*CARD_ORDER)
    )


@dataclass(slots=True)
class CardAgent:
    pk: int
    name: str
    status: str


@dataclass(slots=True)
class Card:
    """What a card shows: plain values, because building 400 model instances with a related
    agent and five annotations cost more than rendering them."""

    pk: int
    title: str
    state: str
    priority: int
    position: int
    pr_url: str
    pr_number: int | None
    preview_url: str
    created_at: datetime
    state_changed_at: datetime
    assigned_agent_id: int | None
    assigned_agent: CardAgent | None
    open_questions: bool
    unseen_feedback: bool
    subtasks_total: int
    subtasks_done: int
    blocked: bool
    preview_status: str  # of the task's latest preview Deployment; "" when it has none


_CARD_FIELDS = (
    "pk",
    "title",
    "state",
    "priority",
    "position",
    "pr_url",
    "pr_number",
    "preview_url",
    "created_at",
    "state_changed_at",
    "assigned_agent_id",
    "assigned_agent__name",
    "assigned_agent__status",
    "open_questions",
    "unseen_feedback",
    "subtasks_total",
    "subtasks_done",
    "blocked",
    "preview_status",
)


def as_cards(queryset: QuerySet[Task]) -> list[Card]:
    """The rows of `board_cards(...)` (filtered or sliced) as `Card`s, in one query."""
    cards = []
    for row in queryset.values_list(*_CARD_FIELDS):
        values = dict(zip(_CARD_FIELDS, row, strict=True))
        agent_id = values["assigned_agent_id"]
        agent = (
            CardAgent(agent_id, values["assigned_agent__name"], values["assigned_agent__status"])
            if agent_id
            else None
        )
        cards.append(
            Card(
                pk=values["pk"],
                title=values["title"],
                state=values["state"],
                priority=values["priority"],
                position=values["position"],
                pr_url=values["pr_url"] or "",
                pr_number=values["pr_number"],
                preview_url=values["preview_url"] or "",
                created_at=values["created_at"],
                state_changed_at=values["state_changed_at"],
                assigned_agent_id=agent_id,
                assigned_agent=agent,
                open_questions=bool(values["open_questions"]),
                unseen_feedback=bool(values["unseen_feedback"]),
                subtasks_total=values["subtasks_total"],
                preview_status=values["preview_status"] or "",
                subtasks_done=values["subtasks_done"],
                blocked=bool(values["blocked"]),
            )
        )
    return cards


def board_page_ids(*, project_id: int, per_column: int = PAGE_SIZE) -> list[int]:
    """Ids of the first `per_column` cards of every column, in one query (a window function).

    Only these rows then get the badge subqueries, so a big board costs what its first pages do.
    """
    ranked = (
        Task.objects.filter(project_id=project_id)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("state")],
                order_by=[F("priority").desc(), F("position"), F("created_at"), F("id")],
            )
        )
        .filter(rank__lte=per_column)
        .values_list("pk", flat=True)
    )
    return list(ranked)


def board_first_pages(*, project_id: int, per_column: int = PAGE_SIZE) -> list[Card]:
    ids = board_page_ids(project_id=project_id, per_column=per_column)
    return as_cards(board_cards(project_id=project_id).filter(pk__in=ids))


def board_column_page(*, project_id: int, state: str, offset: int, limit: int) -> list[Card]:
    return as_cards(board_cards(project_id=project_id).filter(state=state)[offset : offset + limit])


def board_agent_names(*, project_id: int) -> list[str]:
    """Names for the agent filter: every agent with a card here, loaded or not."""
    names = (
        Task.objects.filter(project_id=project_id, assigned_agent__isnull=False)
        .order_by("assigned_agent__name")
        .values_list("assigned_agent__name", flat=True)
        .distinct()
    )
    return list(names)


def board_card(*, project_id: int, task_id: int) -> Card | None:
    found = as_cards(board_cards(project_id=project_id).filter(pk=task_id))
    return found[0] if found else None


def column_counts(*, project_id: int) -> dict[str, int]:
    counts = dict.fromkeys((state for state, _ in COLUMNS), 0)
    rows = (
        Task.objects.filter(project_id=project_id)
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    counts.update(dict(rows))
    return counts


def project_for_board(*, slug: str) -> Project | None:
    return Project.objects.filter(slug=slug).first()


def latest_staging_release(*, project_id: int) -> Release | None:
    return (
        Release.objects.filter(project_id=project_id, environment=Environment.STAGING)
        .order_by("-created_at", "-id")
        .first()
    )


def task_detail(*, project_id: int, task_id: int) -> Task | None:
    return (
        Task.objects.filter(project_id=project_id, pk=task_id)
        .select_related("project", "assigned_agent", "parent", "created_by")
        .prefetch_related(
            "subtasks",
            "depends_on",
            "dependents",
            "questions__agent",
            "questions__answered_by",
            "feedback",
        )
        .first()
    )


def task_timeline(*, task_id: int) -> QuerySet[TaskEvent]:
    return (
        TaskEvent.objects.filter(task_id=task_id)
        .select_related("actor_user", "actor_agent")
        .order_by("created_at", "id")
    )


def projects_overview() -> list[dict[str, Any]]:
    """Each project with its count per column (two queries for any number of projects)."""
    projects = list(Project.objects.order_by("name"))
    counts: dict[int, dict[str, int]] = {
        p.pk: dict.fromkeys((s for s, _ in COLUMNS), 0) for p in projects
    }
    rows = Task.objects.order_by().values_list("project_id", "state").annotate(n=Count("pk"))
    for project_id, state, n in rows:
        if project_id in counts:
            counts[project_id][state] = n
    return [{"project": p, "counts": counts[p.pk]} for p in projects]
