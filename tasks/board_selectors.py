"""Reads for the board and the projects page: each one a fixed number of queries.

The board renders every card from one query: the agent's name and status come in with a join,
and the badges (open questions, unseen feedback, subtask progress, unmet dependencies) are
correlated subqueries, so the query count does not grow with the number of tasks.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Left

from aiworker.sql_once import Prepared, Slot
from deployments.models import Deployment, Environment, Release
from projects.models import Project
from tasks import rules
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.states import DEPENDENCY_MET_STATES, TaskState

PREVIEW_ERROR_SHOWN = 300  # characters of a failed deploy's reason on its card

# Columns in SPEC §5 order.
COLUMNS: list[tuple[str, str]] = [(s.value, s.label) for s in TaskState]
CARD_ORDER = ("-priority", "position", "created_at", "id")
# Cards a column shows before "show more": what a person scans; the counts stay exact.
PAGE_SIZE = 50
RELEASE_UNSETTLED = (Release.Status.PENDING, Release.Status.DEPLOYING, Release.Status.FAILED)
RELEASE_ERROR_SHOWN = 300


def _count_subquery(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("parent").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _card_rows() -> QuerySet[Task]:
    """Tasks with what their cards show, in claim order; `as_cards` picks the columns."""
    subtasks = Task.objects.filter(parent=OuterRef("pk")).exclude(state=TaskState.CANCELLED)
    return Task.objects.annotate(
        agent_name=F("assigned_agent__name"),
        agent_status=F("assigned_agent__status"),
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
        preview_error=Subquery(
            Deployment.objects.filter(task=OuterRef("pk"), environment=Environment.PREVIEW)
            .order_by("-id")
            .annotate(short_error=Left("error", PREVIEW_ERROR_SHOWN))
            .values("short_error")[:1]
        ),
        # A hint only: the card asks `release_progress` for the newest release when set.
        release_unsettled=Exists(
            Release.tasks.through.objects.filter(
                task_id=OuterRef("pk"), release__status__in=RELEASE_UNSETTLED
            )
        ),
    ).order_by(*CARD_ORDER)


# Built once per process: resolving these annotations is about 1.3 ms of ORM work, more than
# most of the board's queries cost. Like a class-based view's `queryset`, it is never evaluated
# itself; every use starts from a clone (`filter`), so requests share nothing through it.
_CARD_ROWS = _card_rows()


def board_cards(*, project_id: int) -> QuerySet[Task]:
    """Every task of the project with what its card shows, in column order."""
    return _CARD_ROWS.filter(project_id=project_id)


@dataclass(slots=True)
class Card:
    """What a card shows: plain values, one row of `board_cards(...)` in field order, because
    building 400 model instances with a related agent and six annotations cost more than
    rendering them."""

    pk: int
    title: str
    state: str
    priority: int
    labels: str  # as stored: ",bug,ui,"
    position: int
    pr_url: str
    pr_number: int | None
    preview_url: str
    created_at: datetime
    state_changed_at: datetime
    assigned_agent_id: int | None
    agent_name: str | None
    agent_status: str | None
    open_questions: bool
    unseen_feedback: bool
    subtasks_total: int
    subtasks_done: int
    blocked: bool
    preview_status: str | None  # of the task's latest preview Deployment, if it has one
    preview_error: str | None  # why that deployment failed (its start), shown on the badge
    release_unsettled: bool  # some release of the task is pending, deploying or failed


_CARD_FIELDS = [field.name for field in fields(Card)]


def as_cards(queryset: QuerySet[Task]) -> list[Card]:
    """The rows of `board_cards(...)` (filtered or sliced) as `Card`s, in one query."""
    return [Card(*row) for row in queryset.values_list(*_CARD_FIELDS)]


@cache
def _first_pages_sql(vendor: str) -> str:
    """Ids of the first cards of every column: per column one `LIMIT` read in claim order.

    Each part walks the `task_board_order` index from its start and stops after its page, so
    the first pages cost the same however many tasks a column holds; a window function over
    the project's tasks (ROW_NUMBER per state) read every task of the project, and its cost
    grew with the history in Production and Cancelled. Written once as SQL per database vendor,
    like tasks/claim_queries.py: as a union of sliced querysets the ORM would compile eight
    subqueries on every request. Each `LIMIT` sits in a derived table because MariaDB refuses
    a `LIMIT` directly inside `IN (...)`, and SQLite one directly inside a compound select.
    """
    q = connection.ops.quote_name
    table = q(Task._meta.db_table)
    part = (
        f"SELECT {q('id')} FROM (SELECT {q('id')} FROM {table}"
        f" WHERE {q('project_id')} = %s AND {q('state')} = %s"
        f" ORDER BY {q('priority')} DESC, {q('position')}, {q('created_at')}, {q('id')}"
        " LIMIT %s) {alias}"
    )
    union = " UNION ALL ".join(part.format(alias=f"c{i}") for i in range(len(COLUMNS)))
    return f"SELECT {q('id')} FROM ({union}) first_pages"


def first_page_ids(*, project_id: int, per_column: int = PAGE_SIZE) -> RawSQL:
    """The ids of the first `per_column` cards of every column, as a subquery for `pk__in`.

    Only these rows then get the badge subqueries, so a big board costs what its first pages do.
    """
    params: list[Any] = []
    for state, _ in COLUMNS:
        params += [project_id, state, per_column]
    return RawSQL(_first_pages_sql(connection.vendor), params)


def _claim_order(card: Card) -> tuple[int, int, datetime, int]:
    return (-card.priority, card.position, card.created_at, card.pk)  # CARD_ORDER


_PROJECT, _PER_COLUMN = Slot("project_id"), Slot("per_column")


@cache
def _first_pages_query(vendor: str) -> Prepared:
    """`board_first_pages`'s query, compiled once per process: building and compiling its ten
    annotations cost more than the database's answer (docs/PERFORMANCE.md)."""
    first_pages = first_page_ids(project_id=_PROJECT.sentinel, per_column=_PER_COLUMN.sentinel)
    cards = board_cards(project_id=_PROJECT.sentinel).filter(pk__in=first_pages).order_by()
    return Prepared(cards.values_list(*_CARD_FIELDS), _PROJECT, _PER_COLUMN)


def board_first_pages(*, project_id: int, per_column: int = PAGE_SIZE) -> list[Card]:
    # One query: the ids go in as a subquery rather than a list of 400 parameters, which would
    # cost a second round trip and, under DEBUG on SQLite, a query to quote every parameter.
    rows = _first_pages_query(connection.vendor).rows(project_id=project_id, per_column=per_column)
    cards = [Card(*row) for row in rows]
    # Sorted here rather than by the database: with an ORDER BY, MariaDB puts every row and its
    # subquery results in a temporary table to sort it, 1.8 ms of 8 for 400 cards; this is 0.2.
    cards.sort(key=_claim_order)
    return cards


@dataclass(frozen=True)
class BoardFilter:
    """The board's search (text, agent, priority, label), run by the database so that it finds
    cards beyond the pages loaded. Falsy when nothing is asked."""

    text: str = ""  # in the title, or "#id"
    agent: str = ""  # an agent's name; "-" for no agent
    priority: int | None = None
    label: str = ""  # one cleaned label

    def __bool__(self) -> bool:
        return bool(self.text or self.agent or self.priority is not None or self.label)

    def q(self) -> Q:
        found = Q()
        if self.text:
            words = Q(title__icontains=self.text)
            number = self.text.removeprefix("#")
            if number.isdigit() and len(number) < 19:
                words |= Q(pk=int(number))
            found &= words
        if self.agent == "-":
            found &= Q(assigned_agent__isnull=True)
        elif self.agent:
            found &= Q(assigned_agent__name=self.agent)
        if self.priority is not None:
            found &= Q(priority=self.priority)
        if self.label:
            found &= Q(labels__contains=f",{self.label},")
        return found


def board_filtered_pages(
    *, project_id: int, board_filter: BoardFilter, per_column: int = PAGE_SIZE
) -> list[Card]:
    """The first `per_column` cards of every column that match: one query per column."""
    matching = board_cards(project_id=project_id).filter(board_filter.q())
    cards: list[Card] = []
    for state, _ in COLUMNS:
        cards += as_cards(matching.filter(state=state)[:per_column])
    return cards


def board_column_page(
    *,
    project_id: int,
    state: str,
    after_id: int | None = None,
    offset: int = 0,
    limit: int,
    board_filter: BoardFilter | None = None,
) -> list[Card]:
    """The next cards of one column in claim order ("show more").

    With `after_id` (the column's last loaded card) the page starts right after that task's
    place, whatever moved in or out above it meanwhile, and it reads only its own rows from the
    `task_board_order` index: a deep page costs what the first does. If that task is gone, or
    without it, `offset` counts from the column's top.
    """
    cards = board_cards(project_id=project_id).filter(state=state)
    if board_filter:
        cards = cards.filter(board_filter.q())
    if after_id is not None:
        cursor = (
            Task.objects.filter(project_id=project_id, pk=after_id)
            .values_list("priority", "position", "created_at", "pk")
            .first()
        )
        if cursor is not None:
            return _page_after(cards, cursor, limit)
    return as_cards(cards[offset : offset + limit])


def _page_after(
    cards: QuerySet[Task], cursor: tuple[int, int, datetime, int], limit: int
) -> list[Card]:
    """The `limit` cards after `cursor` (priority, position, created_at, id) in CARD_ORDER.

    In two index range reads rather than one OR over the four keys, which a database answers by
    walking the column from its top to the cursor: first the rest of the cursor's priority
    (from its position on), then, if the page is not full yet, the lower priorities.
    """
    priority, position, created_at, pk = cursor
    rest = cards.filter(priority=priority, position__gte=position).filter(
        Q(position__gt=position)
        | Q(position=position, created_at__gt=created_at)
        | Q(position=position, created_at=created_at, pk__gt=pk)
    )
    page = as_cards(rest[:limit])
    if len(page) < limit:
        page += as_cards(cards.filter(priority__lt=priority)[: limit - len(page)])
    return page


@dataclass(frozen=True)
class BoardAgents:
    filter_names: list[str]  # every agent with a card here, loaded or not
    startable: list[tuple[int, str]]  # who a person may name when starting a task


@cache
def _board_agents_query(vendor: str) -> Prepared:
    project_id = _PROJECT.sentinel
    # A scalar subquery (one card's agent id, or NULL) rather than EXISTS: MariaDB turned the
    # EXISTS in WHERE into a semi-join that reads every task of the project (2.8 ms with
    # 20,000, against 0.35 ms for one index probe per agent).
    a_card = Task.objects.filter(project_id=project_id, assigned_agent_id=OuterRef("pk"))
    has_card = Subquery(a_card.order_by().values("assigned_agent_id")[:1])
    may_work_here = Q(revoked_at__isnull=True) & (
        Q(project_id__isnull=True) | Q(project_id=project_id)
    )
    rows = (
        rules.agent_model()
        .objects.annotate(has_card=has_card)
        .filter(Q(has_card__isnull=False) | may_work_here)
        .order_by("name")
        .values_list("pk", "name", "has_card", "revoked_at", "project_id", "status")
    )
    return Prepared(rows, _PROJECT)


def board_agents(*, project_id: int) -> BoardAgents:
    """The agents the board shows, in one query (built once): for the agent filter and the
    start dialog."""
    names, startable = [], []
    rows = _board_agents_query(connection.vendor).rows(project_id=project_id)
    for pk, name, card, revoked_at, agent_project, status in rows:
        if card is not None:
            names.append(name)
        if revoked_at is None and agent_project in (None, project_id) and status != "offline":
            startable.append((pk, name))
    return BoardAgents(filter_names=names, startable=startable)


@dataclass(frozen=True)
class OpenQuestion:
    """The question a card shows: its agent waits on it."""

    pk: int
    question: str
    options: list[str]


def open_questions(task_ids: list[int]) -> dict[int, OpenQuestion]:
    """Each task's oldest open question, in one query (only cards that need input ask)."""
    if not task_ids:
        return {}
    found: dict[int, OpenQuestion] = {}
    rows = (
        TaskQuestion.objects.filter(task_id__in=task_ids, answered_at__isnull=True)
        .order_by("task_id", "asked_at", "pk")
        .values_list("task_id", "pk", "question", "options")
    )
    for task_id, pk, question, options in rows:
        if task_id not in found:
            shown = [str(o) for o in options or [] if isinstance(o, str | int | float)]
            found[task_id] = OpenQuestion(pk=pk, question=question, options=shown)
    return found


@dataclass(frozen=True)
class ReleaseProgress:
    """The newest release of a task while it is not settled: what its card says."""

    environment: str
    status: str  # pending, deploying or failed
    error: str


def release_progress(task_ids: list[int]) -> dict[int, ReleaseProgress]:
    """For each task, its newest release if that one is pending, deploying or failed (one
    query; only the approved and staging cards ask, the ones a release moves)."""
    if not task_ids:
        return {}
    rows = (
        Release.tasks.through.objects.filter(task_id__in=task_ids)
        .order_by("task_id", "-release_id")
        .values_list("task_id", "release__environment", "release__status", "release__error")
    )
    found: dict[int, ReleaseProgress] = {}
    seen: set[int] = set()
    for task_id, environment, status, error in rows:
        if task_id in seen:
            continue  # only the newest release of each task counts
        seen.add(task_id)
        if status in RELEASE_UNSETTLED:
            found[task_id] = ReleaseProgress(
                environment, status, (error or "")[:RELEASE_ERROR_SHOWN]
            )
    return found


def board_card(*, project_id: int, task_id: int) -> Card | None:
    found = as_cards(board_cards(project_id=project_id).filter(pk=task_id))
    return found[0] if found else None


@cache
def _column_counts_query(vendor: str) -> Prepared:
    tasks = Task.objects.filter(project_id=_PROJECT.sentinel)
    return Prepared(tasks.order_by().values_list("state").annotate(n=Count("pk")), _PROJECT)


def column_counts(*, project_id: int, board_filter: BoardFilter | None = None) -> dict[str, int]:
    """How many tasks each column holds (with `board_filter`: how many of them match)."""
    counts = dict.fromkeys((state for state, _ in COLUMNS), 0)
    if board_filter:
        tasks = Task.objects.filter(project_id=project_id).filter(board_filter.q())
        counts.update(tasks.order_by().values_list("state").annotate(n=Count("pk")))
    else:  # every board request and live refresh: the statement built once
        counts.update(_column_counts_query(connection.vendor).rows(project_id=project_id))
    return counts


# Built once, like `_CARD_ROWS`. `staging_release_id` is the release that the board's Promote
# button promotes (see `latest_staging_release`), fetched with the project in one query.
_BOARD_PROJECTS = Project.objects.annotate(
    staging_release_id=Subquery(
        Release.objects.filter(project=OuterRef("pk"), environment=Environment.STAGING)
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
)


_SLUG = Slot("slug", str)
_PROJECT_FIELDS = [field.attname for field in Project._meta.concrete_fields]


@cache
def _board_project_query(vendor: str) -> Prepared:
    found = _BOARD_PROJECTS.filter(slug=_SLUG.sentinel).order_by()
    return Prepared(found.values_list(*_PROJECT_FIELDS, "staging_release_id"), _SLUG)


def project_for_board(*, slug: str) -> Project | None:
    """The project with `staging_release_id` (None when there is no staging release), in one
    statement built once; the instance is the one the ORM would load."""
    rows = _board_project_query(connection.vendor).rows(slug=slug)
    if not rows:
        return None
    *values, staging_release_id = rows[0]  # the slug is unique
    project = Project.from_db(connection.alias, _PROJECT_FIELDS, values)
    project.staging_release_id = staging_release_id  # type: ignore[attr-defined]
    return project


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


# The task page's timeline filters: which event kinds each one shows.
TIMELINE_FILTERS: dict[str, tuple[str, Q]] = {
    "progress": ("Progress", Q(kind="progress")),
    # A question asked while in progress is the move to needs_input (its note is the question).
    "questions": (
        "Questions",
        Q(kind__in=("question_asked", "question_answered"))
        | Q(kind="status_changed", to_state=TaskState.NEEDS_INPUT),
    ),
    "states": ("State changes", Q(kind="status_changed")),
    "deploys": ("Deploys", Q(kind__startswith="deploy.")),
    "code": (
        "Code and review",
        Q(kind__in=("branch_created", "pushed", "pr_opened", "pr_updated", "pr_merged"))
        | Q(kind__in=("merge_failed", "commit_status", "review", "comment", "feedback")),
    ),
}


def task_timeline(*, task_id: int, show: str = "") -> QuerySet[TaskEvent]:
    """The task's events, newest first; `show` one of TIMELINE_FILTERS ("" or unknown: all)."""
    events = TaskEvent.objects.filter(task_id=task_id)
    if show in TIMELINE_FILTERS:
        events = events.filter(TIMELINE_FILTERS[show][1])
    return events.select_related("actor_user", "actor_agent").order_by("-created_at", "-id")


def projects_overview(projects_qs: Any = None) -> list[dict[str, Any]]:
    """Each project (of ``projects_qs``, default all) with its count per column (two queries)."""
    projects = list(
        (Project.objects.all() if projects_qs is None else projects_qs).order_by("name")
    )
    counts: dict[int, dict[str, int]] = {
        p.pk: dict.fromkeys((s for s, _ in COLUMNS), 0) for p in projects
    }
    rows = Task.objects.order_by().values_list("project_id", "state").annotate(n=Count("pk"))
    for project_id, state, n in rows:
        if project_id in counts:
            counts[project_id][state] = n
    return [{"project": p, "counts": counts[p.pk]} for p in projects]
