from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from aiworker import health, live
from projects import api_token_apis, token_views

api_patterns: list[URLPattern | URLResolver] = [
    path("", include("projects.urls")),
    path("", include("tasks.urls")),
    path("", include("agents.urls")),
    path("", include("deployments.urls")),
    path("health/", health.HealthView.as_view(), name="health"),
    path("auth/token/", api_token_apis.token_view, name="api-token"),
    path("auth/tokens/", api_token_apis.TokenListCreateApi.as_view(), name="api-token-list"),
    path(
        "auth/tokens/<int:pk>/revoke/",
        api_token_apis.TokenRevokeApi.as_view(),
        name="api-token-revoke",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("agents/", include("agents.console_urls")),
    path("account/tokens/", token_views.tokens_page, name="api-tokens-page"),
    path(
        "account/tokens/<int:token_id>/revoke/",
        token_views.token_revoke,
        name="api-token-revoke-page",
    ),
    # Live events of `make run`'s worker and beat, relayed to this process's boards (live.py).
    path("internal/live-events/", live.relay_view, name="live-relay"),
    path("git/", include("agents.git_urls")),
    path("", include("deployments.board_urls")),
    path("", include("tasks.board_urls")),
]

# An unknown /api/ address answers JSON in the API's error shape, not Django's HTML page.
handler404 = "aiworker.api.not_found"
