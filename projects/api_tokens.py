"""People's REST API tokens: made, listed and revoked by their owner; only a hash is kept.

A token is ``aiwu_`` + 32 random bytes (url-safe base64). The database keeps its SHA-256 (a
unique index: lookup is one equality, as for agent tokens) and its first characters, the
``prefix`` lists and the admin show to recognise it. The token itself is in one answer only,
the one that made it. Each token has an expiry (``API_TOKEN_DAYS`` by default, at most
``API_TOKEN_MAX_DAYS``) and a scope: ``read`` may only do safe methods, ``write`` anything the
owner's roles allow. ``ApiTokenAuthentication`` checks all of it on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from aiworker import errors
from projects.models import ApiToken

PREFIX = "aiwu_"
TOKEN_BYTES = 32
SHOWN_PREFIX = 12  # "aiwu_" and 7 random characters
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# How often last_used_at is written: at most once a minute per token, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def max_days() -> int:
    return int(settings.API_TOKEN_MAX_DAYS)


def default_days() -> int:
    return min(int(settings.API_TOKEN_DAYS), max_days())


def _days(value: Any) -> int:
    most = max_days()
    if value is None or value == "":
        return default_days()
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip())
        except ValueError:
            raise errors.InvalidInput(
                "expires_in_days must be a whole number of days.",
                fields={"expires_in_days": ["Not a whole number."]},
            ) from None
    if not 1 <= value <= most:
        raise errors.InvalidInput(
            f"A token lasts from 1 to {most} days (API_TOKEN_MAX_DAYS).",
            fields={"expires_in_days": [f"Between 1 and {most}."]},
        )
    return value


def api_token_create(
    *, user: Any, name: Any = "", scope: Any = ApiToken.Scope.READ, expires_in_days: Any = None
) -> tuple[ApiToken, str]:
    """A new token for ``user``: the row, and the token itself (shown once, never stored)."""
    if not isinstance(name, str) or len(name.strip()) > 100:
        raise errors.InvalidInput(
            "name is a text of at most 100 characters.", fields={"name": ["Too long."]}
        )
    if scope not in ApiToken.Scope.values:
        raise errors.InvalidInput(
            f"scope is one of: {', '.join(ApiToken.Scope.values)}.",
            fields={"scope": ["Unknown scope."]},
        )
    days = _days(expires_in_days)
    key = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip() or "API token",
        prefix=key[:SHOWN_PREFIX],
        key_hash=hash_key(key),
        scope=scope,
        expires_at=timezone.now() + timedelta(days=days),
    )
    return token, key


def api_token_list(*, user: Any) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first (revoked and expired ones too, marked so)."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def api_token_revoke(*, user: Any, token_id: Any) -> ApiToken:
    """Revoke one of the user's own tokens; someone else's is unknown (404), not forbidden."""
    # Beyond a 64-bit id SQLite raises OverflowError (a 500); no such token exists anyway.
    if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 < token_id < 2**63:
        raise errors.NotFound(f"Token {str(token_id)[:20]} does not exist.")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, user_id=user.pk).first()
        if token is None:
            raise errors.NotFound(f"Token {token_id} does not exist.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(key: str) -> ApiToken:
    """The live token ``key`` is, or PermissionDenied saying why it is not."""
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key.strip())).first()
    if token is None:
        raise errors.PermissionDenied("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise errors.PermissionDenied("This token was revoked.")
    if token.expires_at <= now:
        raise errors.PermissionDenied("This token has expired; make a new one.")
    if not token.user.is_active:
        raise errors.PermissionDenied("User inactive or deleted.")
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def status_of(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= timezone.now():
        return "expired"
    return "active"


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``: hash, expiry, revocation, then the scope of the method.

    DRF's header parsing and its "Invalid token." answer are kept; the lookup is ours.
    """

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        found = super().authenticate(request)
        if found is None:
            return None
        user, token = found
        if token.scope != ApiToken.Scope.WRITE and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied(
                f"Token {token.prefix}… has the read scope: it may only read (GET). "
                "Make a token with the write scope to change anything."
            )
        return user, token

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        try:
            token = api_token_authenticate(key)
        except errors.PermissionDenied as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return token.user, token
