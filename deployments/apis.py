"""REST API of deployments and releases (SPEC §7): list/retrieve deployments, queue a task's
preview, extend a preview's TTL, list releases and roll one back. Thin views: validate, call a
service or selector, shape the answer; domain errors become HTTP answers in aiworker.api."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aiworker import errors
from aiworker.actors import Actor
from aiworker.api import ID_MAX, InputSerializer, error_responses, validated
from deployments import selectors, services
from deployments.models import Deployment, Environment, Release
from projects import roles


class DeploymentOutput(serializers.ModelSerializer):
    class Meta:
        model = Deployment
        fields = [
            "id",
            "project",
            "task",
            "release",
            "environment",
            "driver",
            "namespace",
            "url",
            "image",
            "commit_sha",
            "status",
            "expires_at",
            "error",
            "created_at",
            "updated_at",
        ]


class ReleaseOutput(serializers.ModelSerializer):
    tasks: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = Release
        fields = [
            "id",
            "project",
            "environment",
            "tasks",
            "commit_sha",
            "image",
            "status",
            "rollback_of",
            "error",
            "created_at",
            "deployed_at",
        ]


class DeploymentFilterInput(InputSerializer):
    project = serializers.IntegerField(min_value=1, max_value=ID_MAX, required=False)
    environment = serializers.ChoiceField(choices=Environment.choices, required=False)
    status = serializers.ChoiceField(choices=Deployment.Status.choices, required=False)
    task = serializers.IntegerField(min_value=1, max_value=ID_MAX, required=False)
    limit = serializers.IntegerField(min_value=0, required=False)
    offset = serializers.IntegerField(min_value=0, required=False)


class ReleaseFilterInput(InputSerializer):
    project = serializers.IntegerField(min_value=1, max_value=ID_MAX, required=False)
    environment = serializers.ChoiceField(
        choices=[Environment.STAGING, Environment.PRODUCTION], required=False
    )
    limit = serializers.IntegerField(min_value=0, required=False)
    offset = serializers.IntegerField(min_value=0, required=False)


class DeployPreviewInput(InputSerializer):
    commit_sha = serializers.RegexField(r"^[0-9a-fA-F]{7,64}$", required=False)


class ExtendInput(InputSerializer):
    # The range (1 to PREVIEW_EXTEND_MAX_HOURS) is the service's to check, with the settings
    # of the moment; a number of any size is refused there with a 400, never a 500.
    hours = serializers.IntegerField(
        required=False, help_text="Hours to add, 1 to PREVIEW_EXTEND_MAX_HOURS (default: one TTL)."
    )


class DeployPreviewOutput(serializers.Serializer):
    task_id = serializers.IntegerField()
    url = serializers.URLField()


def _query(serializer: type[serializers.Serializer], request: Request) -> dict:
    return dict(validated(serializer, request.query_params.dict()))


class DeploymentListApi(ListAPIView):
    serializer_class = DeploymentOutput
    filter_backends: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int),
            OpenApiParameter("environment", str, enum=Environment.values),
            OpenApiParameter("status", str, enum=Deployment.Status.values),
            OpenApiParameter("task", int),
        ]
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        q = _query(DeploymentFilterInput, self.request)
        return _visible(
            self.request,
            selectors.deployment_list(
                project_id=q.get("project"),
                environment=q.get("environment"),
                status=q.get("status"),
                task_id=q.get("task"),
            ),
        )


def _visible(request: Request, queryset: Any) -> Any:
    """Only rows of the projects this user sees (projects/roles.py)."""
    return queryset.filter(project__in=roles.visible_projects(request.user).values("pk"))


class DeploymentDetailApi(RetrieveAPIView):
    serializer_class = DeploymentOutput

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return _visible(self.request, selectors.deployment_list())


class DeploymentExtendApi(APIView):
    @extend_schema(request=ExtendInput, responses={200: DeploymentOutput, **error_responses(409)})
    def post(self, request: Request, pk: int) -> Response:
        project_id = (
            _visible(request, Deployment.objects.filter(pk=pk))
            .values_list("project_id", flat=True)
            .first()
            if 0 < pk <= ID_MAX
            else None
        )
        if project_id is None:
            raise errors.NotFound(f"Deployment {pk} does not exist.")
        if not request.user.has_perm(roles.DEPLOY_PREVIEW, project_id):
            raise errors.PermissionDenied(roles.denied_message(roles.DEPLOY_PREVIEW))
        data = validated(ExtendInput, request.data)
        deployment = services.preview_extend(
            deployment_id=pk, actor=Actor.of_user(request.user), hours=data.get("hours")
        )
        return Response(DeploymentOutput(deployment).data)


class TaskDeployPreviewApi(APIView):
    @extend_schema(
        request=DeployPreviewInput,
        responses={202: DeployPreviewOutput, **error_responses(409, 503)},
        description="Queue the task's preview deployment (at `commit_sha`, else the task's head "
        "commit). Answers at once with the URL the preview will have.",
    )
    def post(self, request: Request, pk: int) -> Response:
        data = validated(DeployPreviewInput, request.data)
        url = services.preview_queue(
            task_id=pk, actor=Actor.of_user(request.user), commit_sha=data.get("commit_sha")
        )
        return Response({"task_id": pk, "url": url}, status=status.HTTP_202_ACCEPTED)


class ReleaseListApi(ListAPIView):
    serializer_class = ReleaseOutput
    filter_backends: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int),
            OpenApiParameter("environment", str, enum=["staging", "production"]),
        ]
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        q = _query(ReleaseFilterInput, self.request)
        return _visible(
            self.request,
            selectors.release_list(project_id=q.get("project"), environment=q.get("environment")),
        )


class RollbackInput(serializers.Serializer):
    confirm = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Must be true: the person confirms what goes back to staging.",
    )


class ReleaseRollbackApi(APIView):
    @extend_schema(
        request=RollbackInput,
        responses={201: ReleaseOutput, **error_responses(400, 403, 404, 409, 503)},
        description="Redeploy the production release before this one; once it is live the "
        "rolled-back release's tasks are back in staging. Needs `confirm: true` (400 without "
        "it, naming the release and the tasks that would go back) and the releaser "
        "role in the project (403 without it, and nothing changes).",
    )
    def post(self, request: Request, pk: int) -> Response:
        data = validated(RollbackInput, request.data)
        if not data["confirm"]:
            summary = services.release_rollback_summary(
                release_id=pk, actor=Actor.of_user(request.user)
            )
            raise errors.InvalidInput(
                summary["message"] + " Send confirm=true to roll back.",
                fields={"confirm": [summary["message"]]},
            )
        release = services.release_rollback(release_id=pk, actor=Actor.of_user(request.user))
        return Response(ReleaseOutput(release).data, status=status.HTTP_201_CREATED)
