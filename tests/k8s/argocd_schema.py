"""Validate Argo CD objects against the CRDs Argo CD publishes, strictly (as an API server does
with strict field validation: a field the schema does not describe is refused).

The CRDs are Argo CD's `manifests/crds/` (argoproj/argo-cd at 37ee0097, the 3.5 line,
Apache-2.0), kept gzipped in tests/k8s/argocd_crds/ because no package ships them; the same
files as ../shared/peers/argocd/.
"""

from __future__ import annotations

import copy
import gzip
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parent / "argocd_crds"
FILES = {
    "Application": "application-crd.yaml.gz",
    "ApplicationSet": "applicationset-crd.yaml.gz",
    "AppProject": "appproject-crd.yaml.gz",
}
# Every object has these, described by Kubernetes itself rather than by the CRD.
OBJECT_FIELDS = {"apiVersion", "kind", "metadata"}


class Invalid(AssertionError):
    pass


def validate(doc: dict[str, Any]) -> None:
    """Raise Invalid naming every path that breaks the CRD's schema of `doc["kind"]`."""
    kind = doc.get("kind")
    if kind not in FILES:
        raise Invalid(f"not an Argo CD kind: {kind!r}")
    if doc.get("apiVersion") != "argoproj.io/v1alpha1":
        raise Invalid(f"{kind} wants apiVersion argoproj.io/v1alpha1, not {doc.get('apiVersion')}")
    errors = sorted(_validator(kind).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]
        raise Invalid(f"{kind} {doc.get('metadata', {}).get('name')}: " + "; ".join(lines[:10]))


@cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    with gzip.open(CRDS / FILES[kind], "rt") as handle:
        crd = yaml.safe_load(handle)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema.setdefault("properties", {})
    for field in OBJECT_FIELDS:
        described = {"type": "object" if field == "metadata" else "string"}
        schema["properties"].setdefault(field, described)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The structural schema turned into JSON Schema that refuses unknown fields: every object
    with described properties gets additionalProperties false, unless the CRD says it keeps
    unknown fields; Kubernetes' own extensions become their JSON Schema meaning."""
    schema = copy.deepcopy(schema)
    _tighten(schema)
    return schema


def _tighten(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    keeps_unknown = node.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in [k for k in node if k.startswith("x-kubernetes-")]:
        node.pop(key)
    if "properties" in node and "additionalProperties" not in node and not keeps_unknown:
        node["additionalProperties"] = False
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            for child in value.values():
                _tighten(child)
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            _tighten(value)
