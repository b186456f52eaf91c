"""A person's own API tokens over REST: list, make (the token answered once), revoke.

/api/auth/tokens/ lists and makes, /api/auth/tokens/{id}/revoke/ revokes. Only the owner's
tokens exist here: another person's token id answers 404. No answer holds a hash; the token
itself is in the answer that made it and nowhere else.

POST /api/auth/token/ (TokenView) makes a new token for a username and password, answered once.
Each call makes a new one; without a ``scope`` it may write, as tokens of this endpoint always
could; ``expires_in_days`` defaults to API_TOKEN_DAYS. django-axes refuses a locked-out IP
address or username inside authenticate(); the answer would then be "Unable to log in with
provided credentials", which hides why. Here the lockout is a 429 that names the wait, as
/login/ shows it in a page.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aiworker.api import InputSerializer, error_responses, validated
from projects import api_tokens
from projects.models import ApiToken


class TokenOutput(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "status",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_status(self, token: ApiToken) -> str:
        return api_tokens.status_of(token)


class NewTokenOutput(TokenOutput):
    token = serializers.CharField(help_text="The token. Shown only in this answer.")

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "token"]

    @classmethod
    def of(cls, token: ApiToken, key: str) -> Any:
        token.token = key  # type: ignore[attr-defined]
        return cls(token).data


class TokenCreateInput(InputSerializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    scope = serializers.ChoiceField(choices=ApiToken.Scope.choices, required=False)
    expires_in_days = serializers.IntegerField(required=False)


class TokenListCreateApi(ListAPIView):
    serializer_class = TokenOutput
    filter_backends: list = []

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return api_tokens.api_token_list(user=self.request.user)

    @extend_schema(
        request=TokenCreateInput,
        responses={201: NewTokenOutput},
        description="Make an API token (scope `read` unless `write` is asked). The answer "
        "holds the token; it cannot be read again.",
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenCreateInput, request.data)
        token, key = api_tokens.api_token_create(
            user=request.user,
            name=data.get("name", ""),
            scope=data.get("scope") or ApiToken.Scope.READ,
            expires_in_days=data.get("expires_in_days"),
        )
        return Response(NewTokenOutput.of(token, key), status=status.HTTP_201_CREATED)


class TokenRevokeApi(APIView):
    @extend_schema(
        request=None,
        responses={200: TokenOutput, **error_responses(404)},
        description="Revoke one of your tokens: its next request is refused.",
    )
    def post(self, request: Request, pk: int) -> Response:
        token = api_tokens.api_token_revoke(user=request.user, token_id=pk)
        return Response(TokenOutput(token).data)


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
