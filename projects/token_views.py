"""/account/tokens/: a person's own API tokens — list, make one (shown once), revoke.

A new token is rendered in the answer to the POST that made it (no redirect, no message: a
message would travel in a signed cookie), with Cache-Control: no-store so the browser keeps
no copy. Revoking redirects with a message that names only the token's prefix.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from aiworker import errors
from projects import api_tokens
from projects.models import ApiToken


def _page(request: HttpRequest, *, new_key: str = "", error: str = "", status: int = 200):
    response = render(
        request,
        "projects/api_tokens.html",
        {
            "tokens": [
                (t, api_tokens.status_of(t)) for t in api_tokens.api_token_list(user=request.user)
            ],
            "scopes": ApiToken.Scope.choices,
            "new_key": new_key,
            "error": error,
            "default_days": api_tokens.default_days(),
            "max_days": api_tokens.max_days(),
        },
        status=status,
    )
    add_never_cache_headers(response)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request)
    try:
        _token, key = api_tokens.api_token_create(
            user=request.user,
            name=request.POST.get("name", ""),
            scope=request.POST.get("scope", ApiToken.Scope.READ),
            expires_in_days=request.POST.get("expires_in_days") or None,
        )
    except errors.DomainError as exc:
        return _page(request, error=exc.message, status=400)
    return _page(request, new_key=key)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = api_tokens.api_token_revoke(user=request.user, token_id=token_id)
    except errors.NotFound as exc:
        return _page(request, error=exc.message, status=404)
    messages.success(request, f"Token {token.prefix}… revoked: it no longer works.")
    return redirect("api-tokens-page")
