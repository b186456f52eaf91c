"""Everything under k8s/: kustomizations rendered with tests/k8s/kustomize.py validate strictly
against the Kubernetes 1.33 schemas; Argo CD resources (custom resources: no schema ships with
kubernetes-validate) validate strictly against Argo CD's published CRDs
(tests/k8s/argocd_schema.py)."""

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.k8s import argocd_schema, kustomize

ROOT = Path(__file__).resolve().parents[2] / "k8s"
K8S = "1.33.0"
KUSTOMIZATIONS = ["base", "overlays/production"]


def render(path):
    return kustomize.build(ROOT / path)


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_rendered_object_validates_strictly(path):
    docs = render(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)


def test_every_kustomization_under_k8s_is_tested():
    found = {
        str(p.parent.relative_to(ROOT))
        for p in ROOT.rglob("kustomization.yaml")
        if "argocd" not in p.parts
    }
    assert found == set(KUSTOMIZATIONS)


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_the_platform_runs_every_part_with_probes_and_resources(path):
    docs = render(path)
    workloads = {
        d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")
    }
    assert set(workloads) == {
        "aiworker-web",
        "aiworker-mcp",
        "aiworker-worker",
        "aiworker-beat",
        "aiworker-mariadb",
        "aiworker-redis",
    }
    assert workloads["aiworker-mariadb"]["kind"] == "StatefulSet"
    assert workloads["aiworker-beat"]["spec"]["replicas"] == 1
    for name, doc in workloads.items():
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container.get("livenessProbe"), name
            assert container["resources"]["limits"] and container["resources"]["requests"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        if name.startswith("aiworker-") and name not in ("aiworker-mariadb", "aiworker-redis"):
            assert pod["containers"][0]["image"].startswith("registry.example.com/aiworker/")
    commands = {
        n: d["spec"]["template"]["spec"]["containers"][0].get("command", [])
        for n, d in workloads.items()
    }
    assert commands["aiworker-web"][0] == "daphne"
    assert commands["aiworker-mcp"][2:5] == ["mcp_server", "--transport", "http"]
    assert "worker" in commands["aiworker-worker"] and "beat" in commands["aiworker-beat"]
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Service", "Ingress", "ServiceAccount", "ClusterRole", "Role"} <= kinds


def test_production_overlay_pins_the_image_and_scales_out():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in render("overlays/production")}
    web = docs[("Deployment", "aiworker-web")]
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")
    worker = docs[("Deployment", "aiworker-worker")]["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["memory"] == "2Gi"
    assert worker["envFrom"]  # the patch merged by name, it did not replace the container


def test_secrets_are_referenced_never_committed():
    docs = render("overlays/production")
    assert not [d for d in docs if d["kind"] == "Secret"]
    text = yaml.safe_dump_all(docs)
    assert "secretRef" in text and "secretKeyRef" in text
    for doc in yaml.safe_load_all((ROOT / "base/secret.example.yaml").read_text()):
        kubernetes_validate.validate(doc, K8S, strict=True)
        assert all(
            v.startswith(("<", "mysql://aiworker:<", "https://"))
            for v in doc["stringData"].values()
        )
        assert all(
            "<" in v for v in doc["stringData"].values() if "example.com" not in v or "@" in v
        )


def test_rbac_grants_exactly_what_the_platform_does():
    docs = render("base")
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")
    granted = {
        (group, resource, verb)
        for rule in cluster_role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # What deployments/drivers/kubernetes.py calls, and nothing else.
    crud = {"get", "create", "update", "delete"}
    expected = (
        {("", "namespaces", v) for v in crud | {"list"}}
        | {("", r, v) for r in ("services", "resourcequotas", "limitranges") for v in crud}
        | {("apps", "deployments", v) for v in crud}
        | {("apps", "deployments/status", "get"), ("", "pods", "list")}
        | {("networking.k8s.io", r, v) for r in ("ingresses", "networkpolicies") for v in crud}
    )
    assert granted == expected
    assert all(
        "*" not in rule["verbs"] and "*" not in rule["resources"] for rule in cluster_role["rules"]
    )
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "aiworker-agents"
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"pods", "secrets"}


def argo_docs():
    return kustomize.build(ROOT / "argocd")


def test_argocd_resources_validate_strictly_against_argo_cds_crds():
    docs = argo_docs()
    assert {d["kind"] for d in docs} == {"Application", "ApplicationSet"}
    for doc in docs:
        argocd_schema.validate(doc)


def _application_for(application_set: dict, directory: str) -> dict:
    """The Application the set's git directory generator makes for `directory`."""
    text = yaml.safe_dump(application_set["spec"]["template"])
    text = text.replace("{{.path.basename}}", directory.rsplit("/", 1)[-1])
    text = text.replace("{{.path.path}}", directory)
    for index, segment in enumerate(directory.split("/")):
        text = text.replace(f"{{{{index .path.segments {index}}}}}", segment)
    assert "{{" not in text, text
    template = yaml.safe_load(text)
    metadata = {**template["metadata"], "namespace": application_set["metadata"]["namespace"]}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata,
        "spec": template["spec"],
    }


@pytest.mark.parametrize(
    ("set_name", "directory"),
    [
        ("aiworker-previews", "preview/preview-task-42"),
        ("aiworker-releases", "staging/demo"),
        ("aiworker-releases", "production/demo"),
    ],
)
def test_generated_applications_validate_strictly(set_name, directory):
    application_set = next(d for d in argo_docs() if d["metadata"]["name"] == set_name)
    app = _application_for(application_set, directory)
    argocd_schema.validate(app)
    environment, slug = directory.split("/")
    name = slug if environment == "preview" else f"{slug}-{environment}"
    assert app["metadata"]["name"] == app["spec"]["destination"]["namespace"] == name


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        (lambda app: app["spec"].update(sourcee={}), "sourcee"),
        (lambda app: app["spec"]["destination"].update(namespaces="x"), "namespaces"),
        (lambda app: app["spec"]["syncPolicy"]["automated"].update(prune="yes"), "prune"),
        (lambda app: app["spec"].pop("destination"), "destination"),
    ],
)
def test_the_crd_check_refuses_unknown_or_mistyped_fields(change, refused):
    app = copy.deepcopy(next(d for d in argo_docs() if d["kind"] == "Application"))
    change(app)
    with pytest.raises(argocd_schema.Invalid, match=refused):
        argocd_schema.validate(app)


def test_argocd_resources_have_what_the_gitops_layout_needs():
    """Beyond the schema: the generators the gitops driver's directory layout depends on."""
    docs = argo_docs()
    for doc in docs:
        assert doc["apiVersion"] == "argoproj.io/v1alpha1"
        assert doc["metadata"]["namespace"] == "argocd"
    app = next(d for d in docs if d["kind"] == "Application")
    assert app["spec"]["source"]["path"] == "k8s/overlays/production"
    assert (ROOT / "overlays/production/kustomization.yaml").exists()
    assert set(app["spec"]["destination"]) == {"server", "namespace"}
    sets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ApplicationSet"}
    previews = sets["aiworker-previews"]["spec"]
    assert previews["generators"][0]["git"]["directories"] == [{"path": "preview/*"}]
    assert previews["template"]["spec"]["destination"]["namespace"] == "{{.path.basename}}"
    assert previews["template"]["spec"]["source"]["path"] == "{{.path.path}}"
    releases = sets["aiworker-releases"]["spec"]
    assert [d["path"] for d in releases["generators"][0]["git"]["directories"]] == [
        "staging/*",
        "production/*",
    ]
    for spec in (previews, releases):
        assert spec["goTemplate"] is True
        assert spec["template"]["spec"]["syncPolicy"]["automated"]["prune"] is True


def test_argocd_templates_render_valid_application_metadata():
    """What can be validated: the Application an ApplicationSet makes for a directory has a
    valid object name and namespace (checked with the schema of a core object's metadata)."""
    previews = next(d for d in argo_docs() if d["metadata"]["name"] == "aiworker-previews")
    name = previews["spec"]["template"]["metadata"]["name"].replace(
        "{{.path.basename}}", "preview-task-42"
    )
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, K8S, strict=True
    )
    assert name == "preview-task-42"
