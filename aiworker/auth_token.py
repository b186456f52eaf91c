"""POST /api/auth/token/: a new API token for a username and password, answered once.

Each call makes a new token (projects/api_tokens.py keeps only its hash); a client that
called it before keeps working the same way, it just gets a new token every time. Without a
``scope`` the token may write, as tokens of this endpoint always could; ``expires_in_days``
defaults to API_TOKEN_DAYS.

django-axes refuses a locked-out IP address or username inside authenticate(); the answer
would then be "Unable to log in with provided credentials", which hides why. Here the lockout
is a 429 that names the wait, as /login/ shows it in a page.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from projects import api_tokens
from projects.api_token_apis import NewTokenOutput
from projects.models import ApiToken


class TokenInput(serializers.Serializer):
    username = serializers.CharField(write_only=True)
    password = serializers.CharField(
        write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    scope = serializers.ChoiceField(choices=ApiToken.Scope.choices, required=False)
    expires_in_days = serializers.IntegerField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = authenticate(
            request=self.context.get("request"),
            username=attrs["username"],
            password=attrs["password"],
        )
        if not user:
            raise serializers.ValidationError(
                "Unable to log in with provided credentials.", code="authorization"
            )
        attrs["user"] = user
        return attrs


class TokenView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # DRF's token view took form bodies too; clients that post them keep working.
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=TokenInput,
        responses={
            200: NewTokenOutput,
            400: OpenApiResponse(description="Wrong username or password, or a bad field."),
            429: OpenApiResponse(description="Sign-in locked after repeated failures."),
        },
        auth=[],
        description="A new API token, shown only in this answer (only its hash is kept).",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = TokenInput(data=request.data, context={"request": request})
        if not serializer.is_valid():
            if getattr(request, "axes_locked_out", False):
                minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
                return Response(
                    {
                        "code": "locked_out",
                        "detail": f"Too many failed sign-ins: locked for {minutes} minutes.",
                    },
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                )
            # The API's one error shape (aiworker/api.exception_handler), as every 400.
            raise serializers.ValidationError(serializer.errors)
        data = serializer.validated_data
        token, key = api_tokens.api_token_create(
            user=data["user"],
            name=data.get("name") or "Signed in with a password",
            scope=data.get("scope") or ApiToken.Scope.WRITE,
            expires_in_days=data.get("expires_in_days"),
        )
        return Response(NewTokenOutput.of(token, key))


token_view = TokenView.as_view()
