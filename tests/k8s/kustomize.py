"""A small kustomize renderer for the features k8s/ uses (no `kustomize` or `kubectl` binary
can be installed here: no registry package ships one).

Supported, with kustomize's meaning: `resources` (files and directories holding a
kustomization.yaml), `labels` (pairs, includeSelectors, includeTemplates), `images` (newName,
newTag), `replicas`, and `patches` with a `path` to a strategic-merge patch matched by kind,
name and namespace (lists of objects merge by `name`, other lists are replaced). Anything else
in a kustomization is refused, so a file using an unsupported feature fails loudly instead of
rendering wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "labels", "images", "replicas", "patches"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def build(directory: Path) -> list[dict[str, Any]]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            docs.extend(build(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise ValueError(f"{directory}: only `patches: - path:` is supported")
        _apply_patch(docs, yaml.safe_load((directory / patch["path"]).read_text()), directory)
    for item in spec.get("replicas", []):
        matched = [
            d for d in docs if d["kind"] in WORKLOADS and d["metadata"]["name"] == item["name"]
        ]
        if not matched:
            raise ValueError(f"{directory}: replicas for unknown {item['name']}")
        for doc in matched:
            doc["spec"]["replicas"] = item["count"]
    for image in spec.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                name, _, _tag = container["image"].partition(":")
                if name == image["name"]:
                    new = image.get("newName", name)
                    tag = image.get("newTag", _tag)
                    container["image"] = f"{new}:{tag}" if tag else new
    for label in spec.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
            if doc["kind"] in WORKLOADS:
                template = doc["spec"].get("template", {})
                if label.get("includeTemplates") or label.get("includeSelectors"):
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(
                        label["pairs"]
                    )
                if label.get("includeSelectors"):
                    doc["spec"]["selector"]["matchLabels"].update(label["pairs"])
    return docs


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def _apply_patch(docs: list[dict[str, Any]], patch: dict[str, Any], where: Path) -> None:
    for doc in docs:
        if (
            doc["kind"] == patch["kind"]
            and doc["metadata"]["name"] == patch["metadata"]["name"]
            and doc["metadata"].get("namespace") == patch["metadata"].get("namespace")
        ):
            merged = merge(doc, patch)
            doc.clear()
            doc.update(merged)
            return
    raise ValueError(f"{where}: patch matches nothing: {patch['kind']} {patch['metadata']['name']}")


def merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            index = next((n for n, b in enumerate(out) if b["name"] == item["name"]), None)
            if index is None:
                out.append(copy.deepcopy(item))
            else:
                out[index] = merge(out[index], item)
        return out
    return copy.deepcopy(patch)
