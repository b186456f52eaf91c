"""What every DRF view shares: domain errors turned into HTTP answers."""

from typing import Any

from django.db.models import BigIntegerField
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from aiworker import errors

# The largest id an input accepts: primary keys are 64-bit. SQLite raises OverflowError (a 500)
# for a bigger number in a query where MariaDB matches nothing, so a bigger id is a 400 instead.
ID_MAX = BigIntegerField.MAX_BIGINT


class Pagination(LimitOffsetPagination):
    """`limit` has a ceiling: an unbounded one reaches the query as LIMIT and overflows it."""

    default_limit = 100
    max_limit = 500


_STATUS = {
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.InvalidInput: status.HTTP_400_BAD_REQUEST,
    errors.PermissionDenied: status.HTTP_403_FORBIDDEN,
    errors.TransitionNotAllowed: status.HTTP_409_CONFLICT,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.NotConfigured: status.HTTP_503_SERVICE_UNAVAILABLE,
    errors.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def domain_error_response(exc: errors.DomainError) -> Response:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if isinstance(exc, errors.InvalidInput) and exc.fields:
        body["errors"] = exc.fields
    if isinstance(exc, errors.TransitionNotAllowed):
        body.update(
            {"from_state": exc.from_state, "to_state": exc.to_state, "allowed": exc.allowed}
        )
    code = next(
        (code for cls, code in _STATUS.items() if isinstance(exc, cls)),
        status.HTTP_400_BAD_REQUEST,
    )
    return Response(body, status=code)


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx/5xx answer a view gives for bad input or a refused operation."""

    detail = serializers.CharField()
    code = serializers.CharField()
    # DRF's metaclass pops declared fields off the class, so this does not shadow
    # Serializer.errors at runtime (nor do fields named `context` or `parent` elsewhere).
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    allowed = serializers.ListField(child=serializers.CharField(), required=False)


class InputSerializer(serializers.Serializer):
    """Refuses keys it does not know instead of ignoring them: a client that sends `state` in a
    PATCH learns at once that this is not how a task changes state."""

    # Field name -> what to do instead, added to the "Unknown field." message.
    unknown_field_hints: dict[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        key: [f"Unknown field. {self.unknown_field_hints.get(key, '')}".strip()]
                        for key in unknown
                    }
                )
        return super().to_internal_value(data)


def _messages(error: Any, where: str = "") -> list[str]:
    """DRF's error for one field as flat text: a list field's item errors come as
    {index: [...]} and a nested object's as {key: [...]}; each message then names its place."""
    if isinstance(error, dict):
        return [
            message
            for key, inner in error.items()
            for message in _messages(inner, f"{where}{key}: " if where else f"item {key}: ")
        ]
    if isinstance(error, list):
        return [message for inner in error for message in _messages(inner, where)]
    return [f"{where}{error}"]


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> Any:
    """Run an input serializer; its errors become InvalidInput, so every 400 has one shape:
    `errors` is {field: [message, …]} (ErrorSerializer), whatever the field's type."""
    serializer = serializer_class(data=data, **kwargs)
    if not serializer.is_valid():
        fields = {name: _messages(error) for name, error in serializer.errors.items()}
        first_field, first = next(iter(fields.items()))
        prefix = "" if first_field == "non_field_errors" else f"{first_field}: "
        raise errors.InvalidInput(f"{prefix}{first[0]}", fields=fields)
    return serializer.validated_data


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, errors.DomainError):
        return domain_error_response(exc)
    response = drf_exception_handler(exc, context)
    # DRF's own refusals (malformed JSON, 401, 405) get the same `code` key as domain errors.
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data.setdefault("code", getattr(detail, "code", None) or "error")
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON under /api/ (an id that is not a number never reaches a view)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """`extend_schema(responses=…)` entries for answers particular to a view (409, 503, …);
    the ones every operation can give are added by `add_common_error_responses`."""
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


def add_common_error_responses(result: dict, **kwargs: Any) -> dict:
    """drf-spectacular postprocessing hook: every operation lists the refusals any view gives.

    403 (not signed in, or not allowed) and 429 (rate limit) anywhere; 400 where there is input
    to refuse (parameters or a body); 404 where the path names an object; 415 where a body other
    than JSON can be sent. Added where the view did not list them itself, with the one error
    body, so a client generated from the schema knows every answer it may get."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    described = {
        "400": "Invalid input; nothing was changed.",
        "403": "Not signed in, or not allowed to do this.",
        "404": "No such object.",
        "415": "The body is not JSON.",
        "429": "Too many requests; try again later.",
    }
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            body = "requestBody" in operation
            wanted = ["403", "429"]
            wanted += ["400"] if body or operation.get("parameters") else []
            wanted += ["404"] if "{" in path else []
            wanted += ["415"] if body else []
            responses = operation.setdefault("responses", {})
            for code in wanted:
                responses.setdefault(code, {**error, "description": described[code]})
    return result


class TokenApi(ObtainAuthToken):
    """DRF's "token for a username and password", answering refusals in the API's error shape
    (DRF's own view answers its serializer's raw errors)."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = validated(self.serializer_class, request.data, context={"request": request})
        token, _ = Token.objects.get_or_create(user=data["user"])
        return Response({"token": token.key})
