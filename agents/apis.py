"""REST API for agents. Creating one answers its token, once; no answer ever holds its hash."""

from django.db.models import QuerySet
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


def _agent(pk: int) -> Agent:
    agent = Agent.objects.select_related("project").filter(pk=pk).first()
    if agent is None:
        raise errors.NotFound(f"Agent {pk} does not exist.")
    return agent


def _require(request: Request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise errors.PermissionDenied(f"This needs the permission {perm}.")


class AgentListCreateApi(ListAPIView):
    serializer_class = AgentSerializer
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["name", "pod_name"]
    ordering_fields = ["name", "status", "last_heartbeat_at", "created_at"]

    def get_queryset(self) -> QuerySet[Agent]:
        return Agent.objects.select_related("project")

    @extend_schema(
        request=AgentCreateInput,
        responses={201: AgentCreatedSerializer, **error_responses(400, 401, 403)},
        description="Register an agent. The answer holds its token; it cannot be read again "
        "(rotate it in the admin if lost). Needs the permission `agents.add_agent`.",
    )
    def post(self, request: Request) -> Response:
        _require(request, "agents.add_agent")
        data = validated(AgentCreateInput, request.data)
        project = data.get("project")
        agent, token = services.agent_create(
            name=data["name"],
            kind=data.get("kind", AgentKind.CLAUDE_CODE),
            project=project_by_ref(project) if project not in (None, "") else None,
            can_plan=data.get("can_plan", False),
            capabilities=data.get("capabilities", []),
        )
        agent.token = token  # type: ignore[attr-defined]
        return Response(AgentCreatedSerializer(agent).data, status=status.HTTP_201_CREATED)


class AgentDetailApi(APIView):
    @extend_schema(responses={200: AgentSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(AgentSerializer(_agent(pk)).data)


class AgentRevokeApi(APIView):
    @extend_schema(
        request=None,
        responses={200: AgentSerializer, **error_responses(401, 403, 404)},
        description="Revoke the agent's token: its next call is refused. "
        "Needs the permission `agents.change_agent`.",
    )
    def post(self, request: Request, pk: int) -> Response:
        _require(request, "agents.change_agent")
        _agent(pk)
        services.agent_revoke(agent_id=pk)
        return Response(AgentSerializer(_agent(pk)).data)


class AgentPodCreateInput(InputSerializer):
    project = ProjectRefField()


class AgentPodCreateApi(APIView):
    @extend_schema(
        request=AgentPodCreateInput,
        responses={201: AgentSerializer, **error_responses(400, 401, 403, 503)},
        description="Start an agent pod for a project (kubernetes driver; 503 when agent pods "
        "are not configured). Needs the permission `agents.add_agent`.",
    )
    def post(self, request: Request) -> Response:
        from agents.lifecycle import agent_pod_create
        from aiworker.actors import Actor

        _require(request, "agents.add_agent")
        data = validated(AgentPodCreateInput, request.data)
        agent = agent_pod_create(
            project=project_by_ref(data["project"]), actor=Actor.of_user(request.user)
        )
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)


class AgentPodDeleteApi(APIView):
    @extend_schema(
        request=None,
        responses={200: AgentSerializer, **error_responses(401, 403, 404, 409, 503)},
        description="Delete the agent's pod: its tasks go back to the backlog, its token is "
        "revoked. Needs the permission `agents.change_agent`.",
    )
    def post(self, request: Request, pk: int) -> Response:
        from agents.lifecycle import agent_pod_delete
        from aiworker.actors import Actor

        _require(request, "agents.change_agent")
        _agent(pk)
        agent = agent_pod_delete(agent_id=pk, actor=Actor.of_user(request.user))
        return Response(AgentSerializer(agent).data)
