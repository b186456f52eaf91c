"""Validation every task write shares: text, priority, labels, specification fields."""

import re
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


LABELS_MAX = 10
LABEL_MAX = 30
# Letters, digits and a few separators; never a comma (the column's delimiter).
LABEL_RE = re.compile(r"^[^\W_](?:[\w .:/+-]*[^\W_])?$")


def clean_labels(value: Any) -> str:
    """A list of labels (or one comma-separated string, from a form) as the `labels` column:
    lowercased, stripped, duplicates dropped, in the order given (",bug,ui,"; "" for none)."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidInput(
            "labels must be a list of strings.", fields={"labels": ["A list of strings."]}
        )
    labels: list[str] = []
    for raw in value:
        label = " ".join(raw.split()).lower()
        if not label or label in labels:
            continue
        if len(label) > LABEL_MAX or not LABEL_RE.match(label):
            raise errors.InvalidInput(
                f"Label {label[:40]!r} is not allowed: up to {LABEL_MAX} letters, digits, "
                "spaces and . : / + - _, starting and ending with a letter or digit.",
                fields={"labels": [f"Not a label: {label[:40]!r}."]},
            )
        labels.append(label)
    if len(labels) > LABELS_MAX:
        raise errors.InvalidInput(
            f"A task has at most {LABELS_MAX} labels ({len(labels)} given).",
            fields={"labels": [f"At most {LABELS_MAX}."]},
        )
    return f",{','.join(labels)}," if labels else ""


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
