"""REST API for agents. Creating one answers its token, once; no answer ever holds its hash."""

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import filters, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import services
from agents.models import Agent, AgentKind
from aiworker import errors
from aiworker.api import InputSerializer, ProjectRefField, error_responses, validated
from projects import roles
from tasks.selectors import project_by_ref


class AgentSerializer(serializers.ModelSerializer):
    project_slug = serializers.CharField(source="project.slug", allow_null=True, default=None)
    capabilities = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "kind",
            "status",
            "status_message",
            "pod_name",
            "pod_namespace",
            "current_task",
            "last_heartbeat_at",
            "capabilities",
            "project",
            "project_slug",
            "can_plan",
            "token_prefix",
            "is_revoked",
            "revoked_at",
            "created_at",
        ]


class AgentCreatedSerializer(AgentSerializer):
    token = serializers.CharField(help_text="The agent's bearer token. Shown only in this answer.")

    class Meta(AgentSerializer.Meta):
        fields = [*AgentSerializer.Meta.fields, "token"]


class AgentCreateInput(InputSerializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=AgentKind.choices, required=False)
    project = ProjectRefField(required=False, allow_null=True)
    can_plan = serializers.BooleanField(required=False)
    capabilities = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50
    )


def _agent(request: Request, pk: int) -> Agent:
    agent = _visible_agents(request).filter(pk=pk).first()
    if agent is None:
        raise errors.NotFound(f"Agent {pk} does not exist.")
    return agent


def _visible_agents(request: Request) -> QuerySet[Agent]:
    """Agents of the projects the user sees, and the unrestricted ones (they serve any)."""
    visible = roles.visible_projects(request.user).values("pk")
    return Agent.objects.select_related("project").filter(
        Q(project__isnull=True) | Q(project__in=visible)
    )


def _require(request: Request, perm: str, project: Any = None) -> None:
    """A project's agents are managed by its admins; unrestricted ones need ``perm`` (global)."""
    if request.user.has_perm(perm):  # an operator-wide grant (staff, in the admin)
        return
    if project is not None:
        if not request.user.has_perm(roles.MANAGE_AGENTS, project):
            raise errors.PermissionDenied(roles.denied_message(roles.MANAGE_AGENTS, project))
    else:
        raise errors.PermissionDenied(f"This needs the permission {perm}.")


class AgentListCreateApi(ListAPIView):
    serializer_class = AgentSerializer
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["name", "pod_name"]
    ordering_fields = ["name", "status", "last_heartbeat_at", "created_at"]

    def get_queryset(self) -> QuerySet[Agent]:
        return _visible_agents(self.request)

    @extend_schema(
        request=AgentCreateInput,
        responses={201: AgentCreatedSerializer, **error_responses(400, 401, 403)},
        description="Register an agent. The answer holds its token; it cannot be read again "
        "(rotate it in the admin if lost). Needs the project's admin role or `agents.add_agent`.",
    )
    def post(self, request: Request) -> Response:
        data = validated(AgentCreateInput, request.data)
        ref = data.get("project")
        project = project_by_ref(ref) if ref not in (None, "") else None
        _require(request, "agents.add_agent", project)
        agent, token = services.agent_create(
            name=data["name"],
            kind=data.get("kind", AgentKind.CLAUDE_CODE),
            project=project,
            can_plan=data.get("can_plan", False),
            capabilities=data.get("capabilities", []),
        )
        agent.token = token  # type: ignore[attr-defined]
        return Response(AgentCreatedSerializer(agent).data, status=status.HTTP_201_CREATED)


class AgentDetailApi(APIView):
    @extend_schema(responses={200: AgentSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(AgentSerializer(_agent(request, pk)).data)


class AgentRevokeApi(APIView):
    @extend_schema(
        request=None,
        responses={200: AgentSerializer, **error_responses(401, 403, 404)},
        description="Revoke the agent's token: its next call is refused. "
        "Needs the project's admin role or `agents.change_agent`.",
    )
    def post(self, request: Request, pk: int) -> Response:
        _require(request, "agents.change_agent", _agent(request, pk).project)
        services.agent_revoke(agent_id=pk)
        return Response(AgentSerializer(_agent(request, pk)).data)


class AgentPodCreateInput(InputSerializer):
    project = ProjectRefField()


class AgentPodCreateApi(APIView):
    @extend_schema(
        request=AgentPodCreateInput,
        responses={201: AgentSerializer, **error_responses(400, 401, 403, 503)},
        description="Start an agent pod for a project (kubernetes driver; 503 when agent pods "
        "are not configured). Needs the project's admin role or `agents.add_agent`.",
    )
    def post(self, request: Request) -> Response:
        from agents.lifecycle import agent_pod_create
        from aiworker.actors import Actor

        data = validated(AgentPodCreateInput, request.data)
        project = project_by_ref(data["project"])
        _require(request, "agents.add_agent", project)
        agent = agent_pod_create(project=project, actor=Actor.of_user(request.user))
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)


class AgentPodDeleteApi(APIView):
    @extend_schema(
        request=None,
        responses={200: AgentSerializer, **error_responses(401, 403, 404, 409, 503)},
        description="Delete the agent's pod: its tasks go back to the backlog, its token is "
        "revoked. Needs the project's admin role or `agents.change_agent`.",
    )
    def post(self, request: Request, pk: int) -> Response:
        from agents.lifecycle import agent_pod_delete
        from aiworker.actors import Actor

        _require(request, "agents.change_agent", _agent(request, pk).project)
        agent = agent_pod_delete(agent_id=pk, actor=Actor.of_user(request.user))
        return Response(AgentSerializer(agent).data)
