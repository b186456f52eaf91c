"""The board's pages and the small JSON endpoints its JavaScript calls.

Views stay thin: they parse, call a service or a selector, and turn a domain error into the
answer of this surface (a message on the page, or JSON with `detail` for fetch calls).
"""

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aiworker import errors
from aiworker.actors import Actor
from aiworker.api import domain_error_response
from projects import roles
from projects.models import Project
from tasks import board_selectors as selectors
from tasks import local_review, services
from tasks.board_render import CardRenderer
from tasks.dependency_graph import dependency_graph
from tasks.forms import AnswerForm, BoardFilterForm, FeedbackForm, NoteForm, TaskForm
from tasks.models import Priority, Task
from tasks.states import TaskState, plain_move_targets

S = TaskState
TIMELINE_PAGE = 50  # timeline lines per page of the task page
DEPENDENCY_CHOICES = 500  # tasks the dependency picker offers (the newest)
MAX_JSON_BODY = 100_000  # a 20,000-character note fits
MAX_ID = 2**63 - 1  # ids beyond a signed 64-bit integer are no task (and SQLite refuses them)


# --- helpers ----------------------------------------------------------------------------------


def _project(request: HttpRequest, slug: str, perm: str = roles.VIEW_BOARD) -> Project:
    """The project, if this user holds ``perm`` in it; 404 unknown, 403 naming the role."""
    project = selectors.project_for_board(slug=slug)
    if project is None:
        raise Http404("No such project.")
    if not request.user.has_perm(perm, project):
        raise DjangoPermissionDenied(roles.denied_message(perm, project))
    return project


def _error_json(exc: errors.DomainError) -> JsonResponse:
    answer = domain_error_response(exc)
    return JsonResponse(answer.data, status=answer.status_code)


def _move_targets(user: Any, project: Project) -> dict[str, list[tuple[str, str]]]:
    """Per state, the columns this user may move a card to (the service checks again)."""
    may: dict[str, list[tuple[str, str]]] = {}
    if not user.has_perm(roles.EDIT_TASK, project):
        return {state.value: [] for state in S}
    for state in S:
        targets = []
        for target in S:
            if target.value not in plain_move_targets(state):
                continue
            perm = services.TRANSITION_PERMISSIONS.get((state.value, target.value))
            if perm and not user.has_perm(perm, project):
                continue
            targets.append((target.value, target.label))
        may[state.value] = targets
    return may


def _renderer(project: Project, user: Any) -> CardRenderer:
    return CardRenderer(
        project_slug=project.slug,
        move_targets=_move_targets(user, project),
        may_answer=user.has_perm(roles.ANSWER, project),
    )


def _columns_html(
    project: Project, user: Any, board_filter: selectors.BoardFilter | None = None
) -> str:
    """Every column with its exact count and its first page of cards (with `board_filter`:
    of the cards that match, and how many do), as HTML."""
    renderer = _renderer(project, user)
    by_state: dict[str, list[selectors.Card]] = {state: [] for state, _ in selectors.COLUMNS}
    matches: dict[str, int] | None = None
    if board_filter:
        cards = selectors.board_filtered_pages(project_id=project.pk, board_filter=board_filter)
        matches = selectors.column_counts(project_id=project.pk, board_filter=board_filter)
    else:
        cards = selectors.board_first_pages(project_id=project.pk)
    for card in cards:
        by_state[card.state].append(card)
    renderer.load_questions(cards)
    counts = selectors.column_counts(project_id=project.pk)
    # The header buttons this person may use: merge to staging, promote.
    may_act = {
        S.APPROVED.value: user.has_perm(roles.MERGE_TO_STAGING, project),
        S.STAGING.value: user.has_perm(roles.PROMOTE, project),
    }
    return renderer.columns(
        renderer.column(
            state=state,
            label=label,
            cards=by_state[state],
            count=counts[state],
            limit=project.wip_limit(state),
            with_action=may_act.get(state, False),
            matching=None if matches is None else matches[state],
        )
        for state, label in selectors.COLUMNS
    )


def _card_payload(request: HttpRequest, project: Project, task_id: int) -> dict[str, Any]:
    card = selectors.board_card(project_id=project.pk, task_id=task_id)
    release = selectors.latest_staging_release(project_id=project.pk)
    payload: dict[str, Any] = {
        "id": task_id,
        "counts": selectors.column_counts(project_id=project.pk),
        "staging_release": release.pk if release else None,
    }
    if card is None:
        return {**payload, "state": None, "html": ""}
    html = _renderer(project, request.user).card(card)
    return {**payload, "state": card.state, "html": html}


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        # A form post has had its body read by the CSRF check already; answer, do not crash.
        raise errors.InvalidInput("Send a JSON body with Content-Type: application/json.")
    if len(request.body) > MAX_JSON_BODY:
        raise errors.InvalidInput("Request body too large.")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidInput("Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise errors.InvalidInput("Request body must be a JSON object.")
    return body


def _task_in(project: Project, task_id: int) -> None:
    if not Task.objects.filter(pk=task_id, project=project).exists():
        raise Http404("No such task in this project.")


# --- the board --------------------------------------------------------------------------------

# Where the board's template leaves room for the columns (the renderer escapes their text).
_COLUMNS_MARK = mark_safe("<!-- board columns -->")


@login_required
@require_GET
def board(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    board_filter = _board_filter(request)
    if isinstance(board_filter, HttpResponse):
        return board_filter
    columns = _columns_html(project, request.user, board_filter)
    if request.GET.get("fragment") == "columns":
        # What a board that reconnects fetches to resynchronise.
        return HttpResponse(columns)
    context: dict[str, Any] = {
        "project": project,  # with staging_release_id
        "columns": _COLUMNS_MARK,
        "agents": selectors.board_agents(project_id=project.pk),
        "priorities": Priority.choices,
        "page_size": selectors.PAGE_SIZE,
    }
    # The columns (most of the page's bytes) go in after the template has rendered: passed
    # through it they were copied again at every block and node list, 0.3 ms for 400 cards.
    before, after = render_to_string("board/board.html", context, request).split(_COLUMNS_MARK)
    return HttpResponse("".join((before, columns, after)))


@login_required
@require_GET
def column_more(request: HttpRequest, slug: str, state: str) -> HttpResponse:
    """The next page of a column's cards as HTML ("show more"), in claim order: the cards after
    `after` (the id of the column's last loaded card), or from `offset` when that task is gone
    or not named."""
    project = _project(request, slug)
    if state not in TaskState.values:
        return HttpResponse("Unknown column.", status=404, content_type="text/plain")
    offset = _whole_number(request.GET.get("offset", "0"), maximum=10**7)
    after = request.GET.get("after")
    after_id = None if after is None else _whole_number(after, maximum=MAX_ID)
    if offset is None or (after is not None and after_id is None):
        return HttpResponse(
            "offset and after must be whole numbers from 0.",
            status=400,
            content_type="text/plain",
        )
    board_filter = _board_filter(request)
    if isinstance(board_filter, HttpResponse):
        return board_filter
    cards = selectors.board_column_page(
        project_id=project.pk,
        state=state,
        after_id=after_id,
        offset=offset,
        limit=selectors.PAGE_SIZE,
        board_filter=board_filter,
    )
    return HttpResponse(_renderer(project, request.user).cards(cards))


def _board_filter(request: HttpRequest) -> selectors.BoardFilter | HttpResponse:
    """The search the board's filters send, or a 400 saying what is wrong with it."""
    form = BoardFilterForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(
            f"{name}: {' '.join(str(m) for m in e)}" for name, e in form.errors.items()
        )
        return HttpResponse(f"Bad board filter: {problems}", status=400, content_type="text/plain")
    data = form.cleaned_data
    return selectors.BoardFilter(
        text=data["q"], agent=data["agent"], priority=data["priority"], label=data["label"]
    )


def _whole_number(raw: str, *, maximum: int) -> int | None:
    """`raw` as a whole number from 0 to `maximum`, or None when it is not one."""
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 <= value <= maximum else None


@login_required
@require_GET
def card(request: HttpRequest, slug: str, task_id: int) -> JsonResponse:
    project = _project(request, slug)
    return JsonResponse(_card_payload(request, project, task_id))


@login_required
@require_POST
def move(request: HttpRequest, slug: str, task_id: int) -> JsonResponse:
    project = _project(request, slug)
    try:
        if not request.user.has_perm(roles.EDIT_TASK, project):
            raise errors.PermissionDenied(roles.denied_message(roles.EDIT_TASK, project))
        body = _json_body(request)
        _task_in(project, task_id)
        services.task_transition(
            task_id=task_id,
            to_state=body.get("to_state"),  # type: ignore[arg-type]
            actor=Actor.of_user(request.user),
            note=body.get("note", ""),
            agent_id=body.get("agent"),
        )
    except Http404:
        return JsonResponse({"detail": f"Task {task_id} is not on this board."}, status=404)
    except errors.DomainError as exc:
        answer = domain_error_response(exc)
        # The current card comes back too, so the board can snap it back where it belongs.
        data = {**answer.data, "card": _card_payload(request, project, task_id)}
        return JsonResponse(data, status=answer.status_code)
    return JsonResponse(_card_payload(request, project, task_id))


# --- a task -----------------------------------------------------------------------------------


def _actions(task: Task, user: Any) -> dict[str, bool]:
    targets = plain_move_targets(task.state)
    project = task.project_id
    may_edit = user.has_perm(roles.EDIT_TASK, project)
    return {
        "approve": task.state == S.READY_TO_TEST and user.has_perm(roles.APPROVE, project),
        "request_changes": task.state == S.READY_TO_TEST
        and user.has_perm(roles.REQUEST_CHANGES, project),
        "cancel": S.CANCELLED in targets and may_edit,
        "reopen": task.state == S.CANCELLED and may_edit,
        "edit": may_edit,
        "answer": user.has_perm(roles.ANSWER, project),
        "review": user.has_perm(roles.REQUEST_CHANGES, project),  # the local PR's form
    }


@login_required
@require_GET
def task_detail(request: HttpRequest, slug: str, task_id: int) -> HttpResponse:
    project = _project(request, slug)
    task = selectors.task_detail(project_id=project.pk, task_id=task_id)
    if task is None:
        raise Http404("No such task in this project.")
    questions = list(task.questions.all())
    show = request.GET.get("show", "")
    show = show if show in selectors.TIMELINE_FILTERS else ""
    timeline = selectors.task_timeline(task_id=task.pk, show=show)
    context = {
        "project": project,
        "task": task,
        # Newest first, a page at a time: a long-running task's page stays small.
        "events": Paginator(timeline, TIMELINE_PAGE).get_page(request.GET.get("events")),
        "timeline_show": show,
        "dependency_graph": dependency_graph(
            task, list(task.depends_on.all()), list(task.dependents.all())
        ),
        # The picker: the project's other tasks, newest first (a task may depend on any).
        "dependency_choices": list(
            Task.objects.filter(project=project)
            .exclude(pk=task.pk)
            .order_by("-pk")
            .values_list("pk", "title", "state")[:DEPENDENCY_CHOICES]
        ),
        "depends_on_ids": set(task.depends_on.values_list("pk", flat=True)),
        "timeline_filters": [(key, f[0]) for key, f in selectors.TIMELINE_FILTERS.items()],
        "open_questions": [q for q in questions if q.is_open],
        "answered_questions": [q for q in questions if not q.is_open],
        "feedback": list(task.feedback.all()),
        "actions": _actions(task, request.user),
        "answer_form": AnswerForm(),
        "feedback_form": FeedbackForm(),
        "note_form": NoteForm(),
        # A local-forge PR with its commits and diff (None: no PR, or the PR is on Gitea).
        "pull_request": local_review.task_pull_request(task),
        "spec": [
            (label, getattr(task, f"spec_{name}"))
            for name, label in [
                ("goals", "Goals"),
                ("context", "Context"),
                ("architecture", "Architecture"),
                ("edge_cases", "Edge cases"),
                ("acceptance_criteria", "Acceptance criteria"),
                ("complexity", "Complexity"),
            ]
            if getattr(task, f"spec_{name}")
        ],
    }
    return render(request, "board/task_detail.html", context)


def _detail_url(project: Project, task_id: int) -> str:
    return reverse("board-task", args=[project.slug, task_id])


@login_required
@require_http_methods(["GET", "POST"])
def task_create(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug, roles.CREATE_TASK)
    form = TaskForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            task = services.task_create(
                project=project, actor=Actor.of_user(request.user), **form.cleaned_data
            )
        except errors.InvalidInput as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Task #{task.pk} created in the backlog.")
            return redirect(_detail_url(project, task.pk))
    status = 400 if request.method == "POST" else 200
    return render(
        request, "board/task_form.html", {"project": project, "form": form}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def task_edit(request: HttpRequest, slug: str, task_id: int) -> HttpResponse:
    project = _project(request, slug, roles.EDIT_TASK)
    task = Task.objects.filter(pk=task_id, project=project).first()
    if task is None:
        raise Http404("No such task in this project.")
    initial = {
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "labels": ", ".join(task.label_list),
    }
    form = TaskForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.task_update(
                task_id=task.pk, actor=Actor.of_user(request.user), **form.cleaned_data
            )
        except errors.DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Task saved.")
            return redirect(_detail_url(project, task.pk))
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "board/task_form.html",
        {"project": project, "form": form, "task": task},
        status=status,
    )


def _form_errors(form: Any, exc: errors.DomainError) -> None:
    fields = getattr(exc, "fields", {}) or {}
    known = [name for name in fields if name in form.fields]
    for name in known:
        for message in fields[name]:
            form.add_error(name, message)
    if not known:
        form.add_error(None, exc.message)


@login_required
@require_POST
def question_answer(
    request: HttpRequest, slug: str, task_id: int, question_id: int
) -> HttpResponse:
    project = _project(request, slug, roles.ANSWER)
    _task_in(project, task_id)
    form = AnswerForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The answer is required (at most 20,000 characters).")
        return redirect(_detail_url(project, task_id))
    try:
        services.question_answer(
            question_id=question_id,
            task_id=task_id,
            actor=Actor.of_user(request.user),
            answer=form.cleaned_data["answer"],
        )
    except errors.DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Answer sent to the agent.")
    return redirect(_detail_url(project, task_id))


@login_required
@require_POST
def task_dependencies(request: HttpRequest, slug: str, task_id: int) -> HttpResponse:
    """The picker's answer: the whole list of tasks this one depends on (none: clear it)."""
    project = _project(request, slug, roles.EDIT_TASK)
    _task_in(project, task_id)
    try:
        ids = [int(value) for value in request.POST.getlist("depends_on")]
    except ValueError:
        messages.error(request, "Dependencies are task numbers; nothing was changed.")
        return redirect(_detail_url(project, task_id))
    try:
        services.task_set_dependencies(
            task_id=task_id, depends_on_ids=ids, actor=Actor.of_user(request.user)
        )
    except errors.DomainError as exc:
        messages.error(request, f"{exc.message} Nothing was changed.")
    else:
        messages.success(request, "Dependencies saved.")
    return redirect(_detail_url(project, task_id))


@login_required
@require_POST
def task_action(request: HttpRequest, slug: str, task_id: int, action: str) -> HttpResponse:
    project = _project(request, slug)
    _task_in(project, task_id)
    actor = Actor.of_user(request.user)
    perm = {"approve": roles.APPROVE, "request-changes": roles.REQUEST_CHANGES}.get(
        action, roles.EDIT_TASK
    )
    if not request.user.has_perm(perm, project):
        raise DjangoPermissionDenied(roles.denied_message(perm, project))
    try:
        if action == "approve":
            note = NoteForm(request.POST)
            services.task_approve(
                task_id=task_id, actor=actor, note=note.data.get("note", "")[:20_000]
            )
            done = "Approved."
        elif action == "request-changes":
            form = FeedbackForm(request.POST)
            if not form.is_valid():
                raise errors.InvalidInput("Say what to change: the feedback text is required.")
            services.task_request_changes(
                task_id=task_id, actor=actor, feedback=form.cleaned_data["feedback"]
            )
            done = "Changes requested; the task is back in progress."
        elif action == "cancel":
            services.task_transition(task_id=task_id, to_state=S.CANCELLED, actor=actor)
            done = "Task cancelled."
        elif action == "reopen":
            services.task_transition(
                task_id=task_id, to_state=S.BACKLOG, actor=actor, expected_from=S.CANCELLED
            )
            done = "Task reopened in the backlog."
        else:
            raise Http404("Unknown action.")
    except errors.DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect(_detail_url(project, task_id))
