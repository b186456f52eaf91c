"""What every DRF view shares: domain errors turned into HTTP answers."""

from typing import Any

from django.db.models import BigIntegerField
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from aiworker import errors

# The largest id an input accepts: primary keys are 64-bit. SQLite raises OverflowError (a 500)
# for a bigger number in a query where MariaDB matches nothing, so a bigger id is a 400 instead.
ID_MAX = BigIntegerField.MAX_BIGINT


class Pagination(LimitOffsetPagination):
    """`limit` has a ceiling: an unbounded one reaches the query as LIMIT and overflows it.

    A `limit` or `offset` that is not a whole number (or is negative) is a 400, where DRF's own
    pagination quietly answers the default page: a client that asked for something else should
    learn it did not get it. A `limit` above the ceiling answers the ceiling's worth, as DRF's.
    """

    default_limit = 100
    max_limit = 500

    def get_limit(self, request: Request) -> int:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return self.default_limit
        # Any number of digits: a limit above the ceiling answers the ceiling's worth.
        limit = _whole_number(self.limit_query_param, raw, minimum=1, maximum=10**30)
        return min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        return 0 if raw is None else _whole_number(self.offset_query_param, raw, minimum=0)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
            else:
                parameter["schema"].update({"minimum": 0, "maximum": ID_MAX})
        return parameters


def _whole_number(name: str, raw: str, *, minimum: int, maximum: int = ID_MAX) -> int:
    if raw.isascii() and raw.isdigit():
        # Python refuses int() of a few thousand digits; such a number is past any maximum.
        value = int(raw) if len(raw) <= 30 else 10**30
        if minimum <= value <= maximum:
            return value
    upto = "" if maximum >= 10**30 else f" and at most {maximum}"
    message = f"{name} must be a whole number of at least {minimum}{upto}."
    raise errors.InvalidInput(message, fields={name: [message]})


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
        not_text = {
            key: ["Not a valid string."]
            for key, field in self.fields.items()
            if isinstance(data, dict) and key in data and not _is_text_for(field, data[key])
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not_text and isinstance(exc.detail, dict):  # every field's error at once
                raise serializers.ValidationError({**exc.detail, **not_text}) from None
            raise
        if not_text:
            raise serializers.ValidationError(not_text)
        return value


@extend_schema_field(
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 60}]}
)
class ProjectRefField(serializers.CharField):
    """A project named by its id (a JSON number, or digits) or its slug."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 60)
        kwargs.setdefault("help_text", "Project id or slug.")
        super().__init__(**kwargs)


def _is_text_for(field: serializers.Field, value: Any) -> bool:
    """DRF's CharField turns a number into its digits; here a text field wants a JSON string
    (or null where null is allowed), so `{"title": 0}` is refused rather than saved as "0"."""
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return all(_is_text_for(field.child, item) for item in value)
    if isinstance(field, ProjectRefField):
        return isinstance(value, (str, int)) and not isinstance(value, bool)
    if not isinstance(field, serializers.CharField):
        return True
    return isinstance(value, str) or value is None


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
        raise _invalid_input(serializer.errors)
    return serializer.validated_data


def _invalid_input(detail: Any) -> errors.InvalidInput:
    """DRF's validation errors ({field: errors}, or a bare list) as one InvalidInput."""
    detail = detail if isinstance(detail, dict) else {"non_field_errors": detail}
    fields = {name: _messages(error) for name, error in detail.items()}
    first_field, first = next(iter(fields.items()), ("non_field_errors", ["Invalid input."]))
    prefix = "" if first_field == "non_field_errors" else f"{first_field}: "
    return errors.InvalidInput(f"{prefix}{first[0]}", fields=fields)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, errors.DomainError):
        return domain_error_response(exc)
    if isinstance(exc, serializers.ValidationError):
        # Raised by DRF's own parts rather than `validated()` (SearchFilter refuses a NUL
        # character with a bare list, the token view answers its serializer's errors): the
        # same body as every other 400.
        return domain_error_response(_invalid_input(exc.detail))
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
