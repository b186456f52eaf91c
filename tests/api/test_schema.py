"""The OpenAPI schema is complete and valid, and the Swagger page serves it."""

import yaml
from django.core.management import call_command
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

EXPECTED_PATHS = {
    "/api/projects/": {"get", "post"},
    "/api/projects/{id}/": {"get", "patch", "put"},
    "/api/tasks/": {"get", "post"},
    "/api/tasks/{id}/": {"get", "patch"},
    "/api/tasks/{id}/transition/": {"post"},
    "/api/tasks/{id}/questions/": {"get"},
    "/api/tasks/{id}/questions/{qid}/answer/": {"post"},
    "/api/tasks/{id}/approve/": {"post"},
    "/api/tasks/{id}/request-changes/": {"post"},
    "/api/tasks/{id}/dependencies/": {"put"},
    "/api/tasks/{id}/events/": {"get"},
    "/api/agents/": {"get", "post"},
    "/api/agents/{id}/": {"get"},
    "/api/agents/{id}/revoke/": {"post"},
    "/api/auth/token/": {"post"},
    "/api/auth/tokens/": {"get", "post"},
    "/api/auth/tokens/{id}/revoke/": {"post"},
}


OWN_MODULES = {"projects.apis", "projects.api_token_apis", "tasks.apis", "agents.apis"}


def test_schema_of_projects_tasks_agents_is_clean(db):
    """The endpoints of this part alone: valid OpenAPI, no generator warning or error."""
    from aiworker.urls import api_patterns

    mine = []
    for entry in api_patterns:
        for pattern in getattr(entry, "url_patterns", [entry]):
            view = getattr(pattern.callback, "cls", None)
            if getattr(view, "__module__", "") in OWN_MODULES or pattern.name == "api-token":
                mine.append(pattern)
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=[path("api/", include(mine))]).get_schema(
        request=None, public=True
    )
    assert not GENERATOR_STATS._warn_cache
    assert not GENERATOR_STATS._error_cache
    validate_schema(schema)
    for route, methods in EXPECTED_PATHS.items():
        assert methods <= set(schema["paths"][route]), route


def test_whole_schema_validates_without_warnings(db, tmp_path):
    """What CI checks: `manage.py spectacular --validate --fail-on-warn` over every app."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    for route, methods in EXPECTED_PATHS.items():
        assert route in schema["paths"], route
        assert methods <= set(schema["paths"][route]), route
    components = schema["components"]["schemas"]
    assert "webhook_secret" not in str(components["Project"])
    assert "token_hash" not in str(components)
    assert "token" in components["AgentCreated"]["properties"]
    assert "token" not in components["Agent"]["properties"]
    transition = schema["paths"]["/api/tasks/{id}/transition/"]["post"]
    assert "409" in transition["responses"]


def test_schema_and_docs_are_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/tasks/{id}/transition/" in response.content
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
