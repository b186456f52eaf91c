"""`POST /api/projects/{id}/connect-gitea/`: connect a project to its Gitea repository."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aiworker.actors import Actor
from aiworker.api import error_responses
from projects import services


class ConnectedProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    gitea_owner = serializers.CharField()
    gitea_repo = serializers.CharField()
    gitea_webhook_id = serializers.IntegerField(allow_null=True)
    webhook_url = serializers.CharField()


class ProjectConnectGiteaApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: ConnectedProjectSerializer,
            **error_responses(400, 401, 403, 404, 503),
        },
        description="Check or create the Gitea repository and register the signed webhook. "
        "Running it again changes nothing.",
    )
    def post(self, request: Request, pk: int) -> Response:
        project = services.project_connect(project_id=pk, actor=Actor.of_user(request.user))
        data = {
            "id": project.pk,
            "slug": project.slug,
            "gitea_owner": project.gitea_owner,
            "gitea_repo": project.gitea_repo,
            "gitea_webhook_id": project.gitea_webhook_id,
            "webhook_url": services.webhook_url(project),
        }
        return Response(ConnectedProjectSerializer(data).data)
