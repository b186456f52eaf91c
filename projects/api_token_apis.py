"""A person's own API tokens over REST: list, make (the token answered once), revoke.

/api/auth/tokens/ lists and makes, /api/auth/tokens/{id}/revoke/ revokes. Only the owner's
tokens exist here: another person's token id answers 404. No answer holds a hash; the token
itself is in the answer that made it and nowhere else.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
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
