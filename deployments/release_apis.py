"""`POST /api/releases/merge-to-staging/` and `POST /api/releases/{id}/promote/`: thin views
over deployments/releases.py; domain errors become HTTP answers in aiworker/api.py."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aiworker.actors import Actor
from aiworker.api import ID_MAX, error_responses, validated
from deployments import releases
from deployments.apis import ReleaseOutput


class MergeToStagingInput(serializers.Serializer):
    task_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        allow_empty=False,
        max_length=releases.MAX_TASKS,
    )


class MergeToStagingApi(APIView):
    @extend_schema(
        request=MergeToStagingInput,
        responses={201: ReleaseOutput, **error_responses(400, 401, 403, 404, 409, 503)},
        description="Merge the approved tasks' PRs into the default branch, bring staging up "
        "to it and record a staging release. A task whose merge conflicts stays approved.",
    )
    def post(self, request: Request) -> Response:
        data = validated(MergeToStagingInput, request.data)
        release = releases.release_merge_to_staging(
            task_ids=data["task_ids"], actor=Actor.of_user(request.user)
        )
        return Response(ReleaseOutput(release).data, status=status.HTTP_201_CREATED)


class PromoteReleaseApi(APIView):
    @extend_schema(
        request=None,
        responses={201: ReleaseOutput, **error_responses(401, 403, 404, 409, 503)},
        description="Merge staging into production and record the production release.",
    )
    def post(self, request: Request, pk: int) -> Response:
        release = releases.release_promote(release_id=pk, actor=Actor.of_user(request.user))
        return Response(ReleaseOutput(release).data, status=status.HTTP_201_CREATED)
