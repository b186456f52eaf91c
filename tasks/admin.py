"""Operators' view of tasks. Every state change goes through tasks.services, like any surface:
`state` is read-only in the form and the actions call the services, turning a refusal into an
admin message instead of an error page."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from aiworker import errors, live
from aiworker.actors import Actor
from projects import admin_actions
from tasks import rules, services
from tasks.models import Task, TaskEvent, TaskFeedback, TaskQuestion
from tasks.states import ACTIVE_STATES, TaskState, plain_move_targets


def _run_on_each(
    request: HttpRequest,
    queryset: QuerySet[Task],
    verb: str,
    call: Callable[[Task, Actor], Any],
) -> None:
    """Apply `call` to each selected task; report successes together and each refusal alone."""
    actor = Actor.of_user(request.user)
    done = []
    for task in queryset.order_by("pk"):
        try:
            call(task, actor)
        except errors.DomainError as exc:
            messages.error(request, exc.message)
        else:
            done.append(f"#{task.pk}")
    if done:
        messages.success(request, f"{verb}: {', '.join(done)}.")


# The plain moves an operator can make in bulk: staging and production are the release
# actions' alone, and an active state needs an agent named (the board's start dialog).
ADMIN_MOVE_TARGETS = [
    state
    for state in TaskState
    if state not in ACTIVE_STATES and any(state in plain_move_targets(s) for s in TaskState)
]


def _move_action(state: TaskState) -> Callable[..., None]:
    def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        _run_on_each(
            request,
            queryset,
            f"Moved to {state.label}",
            lambda task, actor: services.task_transition(
                task_id=task.pk, to_state=state, actor=actor, note="Moved in the admin."
            ),
        )

    action.__name__ = f"move_to_{state.value}"
    return admin.action(description=f"Move selected tasks to {state.label}")(action)


class TaskQuestionInline(admin.TabularInline):
    """Questions of the task. Only open questions take an answer, and the answer is given through
    `question_answer` (which moves the task back to in_progress when none are left open)."""

    model = TaskQuestion
    extra = 0
    can_delete = False
    fields = ("question", "options", "agent", "asked_at", "answer", "answered_by", "answered_at")
    readonly_fields = ("question", "options", "agent", "asked_at", "answered_by", "answered_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # agents ask questions, people answer them


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    extra = 0
    can_delete = False
    fields = (
        "created_at",
        "kind",
        "from_state",
        "to_state",
        "actor_kind",
        "actor_user",
        "actor_agent",
        "message",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TaskAdminForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose what shows

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        depends_on = data.get("depends_on")
        project = data.get("project") or getattr(self.instance, "project", None)
        if depends_on is None or project is None:
            return data
        if any(dep.project_id != project.pk for dep in depends_on):
            self.add_error("depends_on", "A task may only depend on tasks of its own project.")
        elif self.instance.pk:
            edges = [
                e for e in rules.project_dependency_edges(project.pk) if e[0] != self.instance.pk
            ]
            edges += [(self.instance.pk, dep.pk) for dep in depends_on]
            cycle = rules.find_cycle(edges)
            if cycle:
                path = " -> ".join(f"#{i}" for i in cycle)
                self.add_error("depends_on", f"These dependencies would make a cycle: {path}.")
        return data


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskAdminForm
    list_display = (
        "id",
        "title",
        "project",
        "state",
        "priority",
        "position",
        "assigned_agent",
        "attempt_count",
        "updated_at",
    )
    list_display_links = ("id", "title")
    list_filter = ("state", "priority", "project", "assigned_agent", "spec_complexity")
    search_fields = ("title", "description", "branch_name", "pr_url", "head_sha")
    list_select_related = ("project", "assigned_agent")
    raw_id_fields = ("parent", "depends_on")
    date_hierarchy = "created_at"
    readonly_fields = (
        "state",
        "assigned_agent",
        "attempt_count",
        "lease_expires_at",
        "created_by",
        "created_at",
        "updated_at",
        "state_changed_at",
    )
    fieldsets = (
        (None, {"fields": ("project", "title", "description", "priority", "position", "state")}),
        ("Work", {"fields": ("assigned_agent", "attempt_count", "lease_expires_at", "parent")}),
        ("Dependencies", {"fields": ("depends_on",)}),
        ("Gitea and preview", {"fields": ("branch_name", "pr_number", "pr_url", "head_sha")}),
        ("Preview", {"fields": ("preview_url",)}),
        (
            "Specification",
            {
                "classes": ("collapse",),
                "fields": (
                    "spec_goals",
                    "spec_context",
                    "spec_architecture",
                    "spec_edge_cases",
                    "spec_acceptance_criteria",
                    "spec_complexity",
                ),
            },
        ),
        ("Times", {"fields": ("created_by", "created_at", "updated_at", "state_changed_at")}),
    )
    inlines = (TaskQuestionInline, TaskEventInline)
    actions = (
        *(_move_action(state) for state in ADMIN_MOVE_TARGETS),
        "requeue",
        "cancel",
        "approve",
        admin_actions.merge_to_staging,
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> Any:
        if obj is None:
            return self.readonly_fields
        # A task never changes project: its dependencies, position and WIP counts belong to it.
        return (*self.readonly_fields, "project")

    def save_model(self, request: HttpRequest, obj: Task, form: Any, change: bool) -> None:
        actor = Actor.of_user(request.user)
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        changed = [f for f in form.changed_data if f != "depends_on"]
        if not change:
            services.record_event(task=obj, kind="created", actor=actor, to_state=obj.state)
            event = "task.created"
        elif changed:
            services.record_event(
                task=obj, kind="edited", actor=actor, payload={"fields": sorted(changed)}
            )
            event = "task.updated"
        else:
            return
        live.broadcast_on_commit(
            project_id=obj.project_id, event=event, data=services.task_data(obj)
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Dependencies go through the service (cycle check, event); the form already validated.
        depends_on = form.cleaned_data.pop("depends_on", None)
        super().save_related(request, form, formsets, change)
        if depends_on is None:
            return
        wanted = {t.pk for t in depends_on}
        task = form.instance
        if wanted != set(task.depends_on.values_list("pk", flat=True)):
            services.task_set_dependencies(
                task_id=task.pk, depends_on_ids=sorted(wanted), actor=Actor.of_user(request.user)
            )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not TaskQuestion:
            formset.save()
            return
        actor = Actor.of_user(request.user)
        # What formset.save() would have set; the admin's change message reads it.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for qform in formset.forms:
            if "answer" not in qform.changed_data or not qform.instance.pk:
                continue
            try:
                services.question_answer(
                    question_id=qform.instance.pk,
                    task_id=form.instance.pk,
                    actor=actor,
                    answer=qform.cleaned_data.get("answer", ""),
                )
            except errors.DomainError as exc:
                messages.error(request, exc.message)
            else:
                formset.changed_objects.append((qform.instance, ["answer"]))

    @admin.action(description="Requeue selected tasks (back to the backlog)")
    def requeue(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        reason = f"Requeued by {request.user.get_username()} in the admin."
        _run_on_each(
            request,
            queryset,
            "Requeued",
            lambda task, actor: services.task_release(task_id=task.pk, actor=actor, reason=reason),
        )

    @admin.action(description="Cancel selected tasks")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        _run_on_each(
            request,
            queryset,
            "Cancelled",
            lambda task, actor: services.task_transition(
                task_id=task.pk, to_state=TaskState.CANCELLED, actor=actor, note="Cancelled."
            ),
        )

    @admin.action(description="Approve selected tasks", permissions=["approve"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        _run_on_each(
            request,
            queryset,
            "Approved",
            lambda task, actor: services.task_approve(task_id=task.pk, actor=actor),
        )

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.approve_task")


@admin.register(TaskQuestion)
class TaskQuestionAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "agent", "short_question", "asked_at", "answered_at")
    list_filter = (("answered_at", admin.EmptyFieldListFilter), "task__project")
    search_fields = ("question", "answer")
    list_select_related = ("task", "agent")
    readonly_fields = ("task", "agent", "question", "options", "asked_at", "answered_by")
    fields = ("task", "agent", "question", "options", "asked_at", "answer", "answered_by")

    @admin.display(description="question")
    def short_question(self, obj: TaskQuestion) -> str:
        return obj.question[:80]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not obj.is_open:
            return (*self.readonly_fields, "answer")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: TaskQuestion, form: Any, change: bool) -> None:
        if "answer" not in form.changed_data:
            return
        try:
            services.question_answer(
                question_id=obj.pk, actor=Actor.of_user(request.user), answer=obj.answer
            )
        except errors.DomainError as exc:
            messages.error(request, exc.message)


@admin.register(TaskFeedback)
class TaskFeedbackAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "source", "author", "created_at", "seen_at")
    list_filter = ("source", ("seen_at", admin.EmptyFieldListFilter))
    search_fields = ("body", "author", "external_id")
    list_select_related = ("task",)
    raw_id_fields = ("task",)
    readonly_fields = ("created_at",)


@admin.register(TaskEvent)
class TaskEventAdmin(admin.ModelAdmin):
    """The audit log: read-only."""

    list_display = ("created_at", "task", "kind", "from_state", "to_state", "actor_kind")
    list_filter = ("kind", "actor_kind", "to_state")
    search_fields = ("message", "task__title")
    list_select_related = ("task",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
