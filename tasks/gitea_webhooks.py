"""`POST /api/webhooks/gitea/?project=<slug>`: thin; gitea_deliveries.py does the work.

The raw body is read before anything parses it: the signature is checked on those bytes.
Answers 202 once the delivery is recorded; the effects run in a job.
"""

import logging

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from aiworker import errors
from aiworker.api import domain_error_response, error_responses
from tasks import gitea_deliveries as deliveries

logger = logging.getLogger(__name__)


class DeliveryAnswer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])
    delivery = serializers.CharField(required=False)


class GiteaWebhookView(APIView):
    authentication_classes: list = []  # the HMAC signature is the authentication
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhook"

    @extend_schema(
        request={"application/json": dict},
        parameters=[
            OpenApiParameter("project", str, required=True, description="The project's slug."),
            OpenApiParameter("X-Gitea-Signature", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Gitea-Event", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Gitea-Delivery", str, OpenApiParameter.HEADER, required=True),
        ],
        responses={
            202: DeliveryAnswer,
            200: DeliveryAnswer,
            **error_responses(400, 401, 403, 404, 429),
        },
        auth=[],
        description="Gitea's signed webhook (HMAC-SHA256 of the raw body, project's secret).",
    )
    def post(self, request: Request) -> Response:
        body = request._request.body  # the raw bytes; request.data would parse them
        headers = request._request.headers
        try:
            received = deliveries.delivery_receive(
                project_slug=request.query_params.get("project", ""),
                signature=headers.get("X-Gitea-Signature", ""),
                event=headers.get("X-Gitea-Event", ""),
                delivery_id=headers.get("X-Gitea-Delivery", ""),
                body=body,
            )
        except deliveries.SignatureInvalid as exc:
            # Only a log line: a forged delivery records nothing.
            logger.warning(
                "gitea webhook refused: %s (project=%s, ip=%s)",
                exc.message,
                request.query_params.get("project", "")[:60],
                request._request.META.get("REMOTE_ADDR", ""),
            )
            code = status.HTTP_401_UNAUTHORIZED if exc.missing else status.HTTP_403_FORBIDDEN
            return Response({"detail": exc.message, "code": "bad_signature"}, status=code)
        except errors.DomainError as exc:
            return domain_error_response(exc)
        if received.duplicate:
            return Response({"status": "duplicate"}, status=status.HTTP_200_OK)
        assert received.delivery is not None
        return Response(
            {"status": "accepted", "delivery": received.delivery.delivery_id},
            status=status.HTTP_202_ACCEPTED,
        )
