"""Validation every task write shares: text, priority, specification fields."""

from typing import Any

from django.conf import settings

from aiworker import errors
from tasks.models import Priority

SPEC_FIELDS = (
    "spec_goals",
    "spec_context",
    "spec_architecture",
    "spec_edge_cases",
    "spec_acceptance_criteria",
    "spec_complexity",
)


def clean_text(
    value: Any, *, field: str, required: bool = False, max_length: int | None = None
) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise errors.InvalidInput(f"{field} must be text.", fields={field: ["Must be a string."]})
    max_length = max_length or settings.TEXT_FIELD_MAX
    if required and not value.strip():
        raise errors.InvalidInput(
            f"{field} is required.", fields={field: ["This field is required."]}
        )
    if len(value) > max_length:
        message = f"Ensure this field has no more than {max_length} characters."
        raise errors.InvalidInput(
            f"{field} is too long (max {max_length}).", fields={field: [message]}
        )
    return value.strip() if field == "title" else value


def clean_priority(value: Any) -> int:
    if isinstance(value, str) and value.lower() in {p.label.lower() for p in Priority}:
        return next(p.value for p in Priority if p.label.lower() == value.lower())
    if isinstance(value, bool) or not isinstance(value, int) or value not in Priority.values:
        allowed = ", ".join(f"{p.value} ({p.label.lower()})" for p in Priority)
        raise errors.InvalidInput(
            f"priority must be one of {allowed}.", fields={"priority": [f"Choose from {allowed}."]}
        )
    return value


def clean_spec(spec: dict[str, Any]) -> dict[str, Any]:
    unknown = set(spec) - {f.removeprefix("spec_") for f in SPEC_FIELDS}
    if unknown:
        raise errors.InvalidInput(
            f"Unknown specification fields: {', '.join(sorted(unknown))}.",
            fields={name: ["Unknown field."] for name in sorted(unknown)},
        )
    cleaned = {f"spec_{k}": clean_text(v, field=k) for k, v in spec.items()}
    complexity = cleaned.get("spec_complexity")
    if complexity and complexity not in ("small", "medium", "large"):
        raise errors.InvalidInput(
            "complexity must be small, medium or large.",
            fields={"complexity": ["Choose from small, medium, large."]},
        )
    return cleaned
