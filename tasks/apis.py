"""REST API for tasks (SPEC §7). Views validate with an input serializer, call one service or
selector, and shape the answer with an output serializer; domain errors become HTTP answers in
aiworker.api."""

from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import filters, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aiworker import errors
from aiworker.actors import Actor
from aiworker.api import ID_MAX, InputSerializer, ProjectRefField, error_responses, validated
from projects import roles
from projects.models import Project
from tasks import selectors, services
from tasks.models import Complexity, Priority, Task, TaskEvent, TaskQuestion
from tasks.services.validation import LABEL_MAX, LABELS_MAX
from tasks.states import TaskState

TEXT_MAX = settings.TEXT_FIELD_MAX
SPEC_KEYS = ("goals", "context", "architecture", "edge_cases", "acceptance_criteria", "complexity")


# --- output -----------------------------------------------------------------------------------


class AgentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class QuestionSerializer(serializers.ModelSerializer):
    agent = AgentRefSerializer(allow_null=True)
    answered_by = serializers.SerializerMethodField()
    options = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = TaskQuestion
        fields = [
            "id",
            "task",
            "agent",
            "question",
            "options",
            "answer",
            "answered_by",
            "asked_at",
            "answered_at",
            "is_open",
        ]

    def get_answered_by(self, obj: TaskQuestion) -> str | None:
        return obj.answered_by.get_username() if obj.answered_by else None


class TaskSerializer(serializers.ModelSerializer):
    project_slug = serializers.CharField(source="project.slug")
    assigned_agent = AgentRefSerializer(allow_null=True)
    depends_on = serializers.SerializerMethodField()
    labels = serializers.ListField(child=serializers.CharField(), source="label_list")
    open_questions = serializers.IntegerField()

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "project_slug",
            "title",
            "description",
            "state",
            "priority",
            "labels",
            "position",
            "assigned_agent",
            "parent",
            "depends_on",
            "branch_name",
            "pr_number",
            "pr_url",
            "head_sha",
            "preview_url",
            "attempt_count",
            "lease_expires_at",
            "open_questions",
            "created_at",
            "updated_at",
            "state_changed_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_depends_on(self, obj: Task) -> list[int]:
        return [t.pk for t in obj.dependency_list]  # type: ignore[attr-defined]


class DependencySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.ChoiceField(choices=TaskState.choices)


class SpecSerializer(serializers.Serializer):
    goals = serializers.CharField(source="spec_goals")
    context = serializers.CharField(source="spec_context")  # type: ignore[assignment]
    architecture = serializers.CharField(source="spec_architecture")
    edge_cases = serializers.CharField(source="spec_edge_cases")
    acceptance_criteria = serializers.CharField(source="spec_acceptance_criteria")
    complexity = serializers.CharField(source="spec_complexity")


class TaskDetailSerializer(TaskSerializer):
    dependencies = DependencySerializer(many=True, source="dependency_list")
    dependents = serializers.SerializerMethodField()
    subtasks = serializers.SerializerMethodField()
    questions = QuestionSerializer(many=True)
    spec = SpecSerializer(source="*")

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "dependencies", "dependents", "subtasks"]
        fields += ["questions", "spec"]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_dependents(self, obj: Task) -> list[int]:
        return [t.pk for t in obj.dependents.all()]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_subtasks(self, obj: Task) -> list[int]:
        return [t.pk for t in obj.subtasks.all()]


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = TaskEvent
        fields = [
            "id",
            "kind",
            "from_state",
            "to_state",
            "actor_kind",
            "actor",
            "message",
            "payload",
            "created_at",
        ]

    def get_actor(self, obj: TaskEvent) -> str:
        if obj.actor_user_id and obj.actor_user:
            return obj.actor_user.get_username()
        if obj.actor_agent_id and obj.actor_agent:
            return obj.actor_agent.name
        return obj.actor_kind


def _detail(task_id: int, *, code: int = status.HTTP_200_OK) -> Response:
    return Response(TaskDetailSerializer(selectors.task_get(task_id=task_id)).data, status=code)


# --- input ------------------------------------------------------------------------------------


def _text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=TEXT_MAX, **kwargs)


class SpecInput(InputSerializer):
    goals = _text(required=False, allow_blank=True)
    context = _text(required=False, allow_blank=True)  # type: ignore[assignment]
    architecture = _text(required=False, allow_blank=True)
    edge_cases = _text(required=False, allow_blank=True)
    acceptance_criteria = _text(required=False, allow_blank=True)
    complexity = serializers.ChoiceField(
        choices=Complexity.choices, required=False, allow_blank=True
    )


STATE_HINT = {"state": "Change the state with POST /api/tasks/{id}/transition/."}


class TaskCreateInput(InputSerializer):
    unknown_field_hints = STATE_HINT
    project = ProjectRefField()
    title = serializers.CharField(max_length=settings.TASK_TITLE_MAX)
    description = _text(required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=LABEL_MAX, allow_blank=True),
        required=False,
        max_length=LABELS_MAX,
        help_text='Labels, e.g. ["bug", "ui"]: lowercased; the list replaces the task\'s.',
    )
    parent = serializers.IntegerField(  # type: ignore[assignment]
        required=False, allow_null=True, min_value=1
    )
    depends_on = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        required=False,
        max_length=500,
    )
    spec = SpecInput(required=False)


class TaskUpdateInput(InputSerializer):
    unknown_field_hints = STATE_HINT
    title = serializers.CharField(max_length=settings.TASK_TITLE_MAX, required=False)
    description = _text(required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=LABEL_MAX, allow_blank=True),
        required=False,
        max_length=LABELS_MAX,
        help_text='Labels, e.g. ["bug", "ui"]: lowercased; the list replaces the task\'s.',
    )
    spec = SpecInput(required=False)


class TransitionInput(InputSerializer):
    to_state = serializers.ChoiceField(choices=TaskState.choices)
    note = _text(required=False, allow_blank=True)
    position = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    agent = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="The agent that holds the task, when a person starts it (backlog -> "
        "in_progress); required there.",
    )


class AnswerInput(InputSerializer):
    answer = _text()


class ApproveInput(InputSerializer):
    note = _text(required=False, allow_blank=True)


class RequestChangesInput(InputSerializer):
    feedback = _text()


class DependenciesInput(InputSerializer):
    depends_on = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        allow_empty=True,
        max_length=500,
    )


# --- list filters -----------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, min_value=1, max_value=ID_MAX, **kwargs)


class TaskFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(method="filter_project", help_text="Project id or slug.")
    state = django_filters.MultipleChoiceFilter(choices=TaskState.choices)
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices)
    label = django_filters.CharFilter(
        method="filter_label", max_length=LABEL_MAX, help_text="Tasks with this label."
    )
    agent = IdFilter(field_name="assigned_agent_id", help_text="Agent id.")
    parent = IdFilter(field_name="parent_id", help_text="Parent task id.")

    class Meta:
        model = Task
        fields = ["project", "state", "priority", "label", "agent", "parent"]

    def filter_label(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return queryset.filter(labels__contains=services.clean_labels([value]))

    def filter_project(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return queryset.filter(project=selectors.project_by_ref(value))


class FilterBackend(DjangoFilterBackend):
    """Bad filter values answer in the same error shape as every other 400."""

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            fields = {k: list(v) for k, v in filterset.errors.items()}
            name, messages = next(iter(fields.items()))
            raise errors.InvalidInput(f"{name}: {messages[0]}", fields=fields)
        return filterset.qs


# --- views ------------------------------------------------------------------------------------


def _may(request: Request, pk: Any, perm: str = roles.VIEW_BOARD) -> None:
    """404 for a task in a project the user cannot see; 403 naming the role for ``perm``."""
    in_range = isinstance(pk, int) and 0 < pk <= ID_MAX
    project_id = (
        Task.objects.filter(pk=pk).values_list("project_id", flat=True).first()
        if in_range
        else None
    )
    project = Project(pk=project_id)  # only its id is read by projects/roles.py
    if project_id is None or not request.user.has_perm(roles.VIEW_BOARD, project):
        raise errors.NotFound(f"Task {pk} does not exist.")
    if not request.user.has_perm(perm, project):
        raise errors.PermissionDenied(roles.denied_message(perm))


class TaskListCreateApi(ListAPIView):
    serializer_class = TaskSerializer
    filter_backends = [FilterBackend, filters.SearchFilter, filters.OrderingFilter]
    filterset_class = TaskFilter
    search_fields = ["title", "description"]
    ordering_fields = ["id", "priority", "position", "state", "title", "created_at", "updated_at"]

    def get_queryset(self) -> QuerySet[Task]:
        return selectors.task_list().filter(
            project__in=roles.visible_projects(self.request.user).values("pk")
        )

    @extend_schema(
        request=TaskCreateInput,
        responses={201: TaskDetailSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = validated(TaskCreateInput, request.data)
        project = selectors.project_by_ref(data["project"])
        if not request.user.has_perm(roles.VIEW_BOARD, project):
            raise errors.InvalidInput("Unknown project.", fields={"project": ["No such project."]})
        if not request.user.has_perm(roles.CREATE_TASK, project):
            raise errors.PermissionDenied(roles.denied_message(roles.CREATE_TASK, project))
        task = services.task_create(
            project=project,
            title=data["title"],
            actor=Actor.of_user(request.user),
            description=data.get("description", ""),
            priority=data.get("priority", Priority.MEDIUM),
            labels=data.get("labels", []),
            parent_id=data.get("parent"),
            depends_on_ids=data.get("depends_on", ()),
            spec=data.get("spec"),
        )
        return _detail(task.pk, code=status.HTTP_201_CREATED)


class TaskDetailApi(APIView):
    @extend_schema(responses={200: TaskDetailSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        _may(request, pk)
        return _detail(pk)

    @extend_schema(
        request=TaskUpdateInput,
        responses={200: TaskDetailSerializer, **error_responses(400, 401, 403, 404)},
        description="Edit title, description, priority, labels or specification. The state "
        "changes "
        "only through `transition/` and the other actions.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        _may(request, pk, roles.EDIT_TASK)
        data = validated(TaskUpdateInput, request.data)
        services.task_update(
            task_id=pk,
            actor=Actor.of_user(request.user),
            title=data.get("title"),
            description=data.get("description"),
            priority=data.get("priority"),
            labels=data.get("labels"),
            spec=data.get("spec"),
        )
        return _detail(pk)


class TaskTransitionApi(APIView):
    @extend_schema(
        request=TransitionInput,
        responses={200: TaskDetailSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Move the task along the state machine. A move the table does not allow "
        "answers 409 with `allowed`, the states it may move to. Staging and production are "
        "reached only through the release endpoints (merge-to-staging, promote, rollback); a "
        "plain move there answers 409 naming the action. Starting a task names its `agent`.",
    )
    def post(self, request: Request, pk: int) -> Response:
        _may(request, pk)  # the service checks the move's own permission in the project
        data = validated(TransitionInput, request.data)
        services.task_transition(
            task_id=pk,
            to_state=data["to_state"],
            actor=Actor.of_user(request.user),
            note=data.get("note", ""),
            position=data.get("position"),
            agent_id=data.get("agent"),
        )
        return _detail(pk)


class TaskQuestionsApi(APIView):
    @extend_schema(responses={200: QuestionSerializer(many=True), **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        _may(request, pk)
        questions = selectors.task_questions(task_id=pk)
        return Response(QuestionSerializer(questions, many=True).data)


class QuestionAnswerApi(APIView):
    @extend_schema(
        request=AnswerInput,
        responses={200: QuestionSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="Answer an open question. When no question is left open, a task in "
        "needs_input goes back to in_progress.",
    )
    def post(self, request: Request, pk: int, qid: int) -> Response:
        _may(request, pk, roles.ANSWER)
        data = validated(AnswerInput, request.data)
        item = services.question_answer(
            question_id=qid, task_id=pk, actor=Actor.of_user(request.user), answer=data["answer"]
        )
        return Response(
            QuestionSerializer(selectors.task_questions(task_id=pk).get(pk=item.pk)).data
        )


class TaskApproveApi(APIView):
    @extend_schema(
        request=ApproveInput,
        responses={200: TaskDetailSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="ready_to_test -> approved. Needs the reviewer role in the task's project.",
    )
    def post(self, request: Request, pk: int) -> Response:
        data = validated(ApproveInput, request.data)
        # Checked before the state so a person without the right learns that, not the state.
        _may(request, pk, roles.APPROVE)
        services.task_approve(
            task_id=pk, actor=Actor.of_user(request.user), note=data.get("note", "")
        )
        return _detail(pk)


class TaskRequestChangesApi(APIView):
    @extend_schema(
        request=RequestChangesInput,
        responses={200: TaskDetailSerializer, **error_responses(400, 401, 403, 404, 409)},
        description="ready_to_test -> in_progress, with feedback the agent reads next.",
    )
    def post(self, request: Request, pk: int) -> Response:
        _may(request, pk, roles.REQUEST_CHANGES)
        data = validated(RequestChangesInput, request.data)
        services.task_request_changes(
            task_id=pk, actor=Actor.of_user(request.user), feedback=data["feedback"]
        )
        return _detail(pk)


class TaskDependenciesApi(APIView):
    @extend_schema(
        request=DependenciesInput,
        responses={200: TaskDetailSerializer, **error_responses(400, 401, 403, 404)},
        description="Replace the tasks this task depends on. A cycle answers 400.",
    )
    def put(self, request: Request, pk: int) -> Response:
        _may(request, pk, roles.EDIT_TASK)
        data = validated(DependenciesInput, request.data)
        services.task_set_dependencies(
            task_id=pk, depends_on_ids=data["depends_on"], actor=Actor.of_user(request.user)
        )
        return _detail(pk)


class TaskEventsApi(ListAPIView):
    """The task's timeline, oldest first."""

    serializer_class = EventSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[TaskEvent]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no task
            return TaskEvent.objects.none()
        _may(self.request, self.kwargs["pk"])
        return selectors.task_events(task_id=self.kwargs["pk"])
