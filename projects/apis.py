"""REST API for projects. `webhook_secret` is in no serializer, so it is in no answer."""

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import filters, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aiworker import errors
from aiworker.api import InputSerializer, error_responses, validated
from aiworker.dns_names import SLUG_HELP, SLUG_RE
from projects import roles
from projects.models import Membership, Project
from tasks.states import TaskState

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "gitea_owner",
            "gitea_repo",
            "default_branch",
            "staging_branch",
            "production_branch",
            "image_repository",
            "preview_port",
            "preview_env",
            "wip_limits",
            "max_concurrent_agents",
            "has_repository",
            "created_at",
            "updated_at",
        ]


def _branch(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(r"^[A-Za-z0-9._/-]+$", max_length=100, **kwargs)


class ProjectInput(InputSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.RegexField(SLUG_RE, max_length=60, error_messages={"invalid": SLUG_HELP})
    description = serializers.CharField(max_length=20_000, required=False, allow_blank=True)
    gitea_owner = serializers.CharField(max_length=100, required=False, allow_blank=True)
    gitea_repo = serializers.CharField(max_length=100, required=False, allow_blank=True)
    default_branch = _branch(required=False)
    staging_branch = _branch(required=False)
    production_branch = _branch(required=False)
    image_repository = serializers.CharField(max_length=255, required=False, allow_blank=True)
    preview_port = serializers.IntegerField(min_value=1, max_value=65535, required=False)
    preview_env = serializers.DictField(
        child=serializers.CharField(max_length=2000, allow_blank=True), required=False
    )
    wip_limits = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=10_000), required=False
    )
    max_concurrent_agents = serializers.IntegerField(min_value=0, max_value=1000, required=False)

    def validate_preview_env(self, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not ENV_NAME.match(k)]
        if bad:
            raise serializers.ValidationError(f"Not environment variable names: {bad}.")
        if len(value) > 100:
            raise serializers.ValidationError("At most 100 variables.")
        return value

    def validate_wip_limits(self, value: dict[str, int]) -> dict[str, int]:
        bad = sorted(set(value) - set(TaskState.values))
        if bad:
            raise serializers.ValidationError(
                f"Unknown columns {bad}; choose from {', '.join(TaskState.values)}."
            )
        return value


def _project(request: Request, pk: int, perm: str = roles.VIEW_BOARD) -> Project:
    """The project if the user may see it (404 otherwise) and holds ``perm`` in it (403)."""
    project = roles.visible_projects(request.user).filter(pk=pk).first()
    if project is None:
        raise errors.NotFound(f"Project {pk} does not exist.")
    if not request.user.has_perm(perm, project):
        raise errors.PermissionDenied(roles.denied_message(perm, project))
    return project


def _require(request: Request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise errors.PermissionDenied(f"This needs the permission {perm}.")


@transaction.atomic
def _save(project: Project, data: dict[str, Any]) -> Project:
    if Project.objects.filter(slug=data.get("slug", project.slug)).exclude(pk=project.pk).exists():
        raise errors.InvalidInput(
            f"A project with slug {data['slug']!r} exists.", fields={"slug": ["Already taken."]}
        )
    for name, value in data.items():
        setattr(project, name, value)
    try:
        if project.pk:
            project.save(update_fields=[*data, "updated_at"])
        else:
            project.save()
    except IntegrityError:  # a concurrent create took the slug between the check and the save
        raise errors.InvalidInput(
            "A project with this slug exists.", fields={"slug": ["Already taken."]}
        ) from None
    return project


class ProjectListCreateApi(ListAPIView):
    serializer_class = ProjectSerializer
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "slug", "created_at"]

    def get_queryset(self) -> QuerySet[Project]:
        return roles.visible_projects(self.request.user)

    @extend_schema(
        request=ProjectInput,
        responses={201: ProjectSerializer, **error_responses(400, 401, 403)},
        description="Needs the permission `projects.add_project`.",
    )
    def post(self, request: Request) -> Response:
        _require(request, "projects.add_project")
        data = validated(ProjectInput, request.data)
        project = _save(Project(), dict(data))
        # Whoever creates a project administers it.
        Membership.objects.get_or_create(
            project=project, user=request.user, defaults={"role": Membership.Role.ADMIN}
        )
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses={200: ProjectSerializer, **error_responses(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(ProjectSerializer(_project(request, pk)).data)

    @extend_schema(
        request=ProjectInput,
        responses={200: ProjectSerializer, **error_responses(400, 401, 403, 404)},
        description="Partial update. Needs the project's admin role.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        project = _project(request, pk, roles.MANAGE_PROJECT)
        data = validated(ProjectInput, request.data, partial=True)
        return Response(ProjectSerializer(_save(project, dict(data))).data)

    @extend_schema(
        request=ProjectInput,
        responses={200: ProjectSerializer, **error_responses(400, 401, 403, 404)},
        description="Full update. Needs the project's admin role.",
    )
    def put(self, request: Request, pk: int) -> Response:
        project = _project(request, pk, roles.MANAGE_PROJECT)
        data = validated(ProjectInput, request.data)
        return Response(ProjectSerializer(_save(project, dict(data))).data)
