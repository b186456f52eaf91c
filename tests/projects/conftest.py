"""Fixtures of the Gitea integration tests.

`gitea` is a stand-in Gitea (tests/contract/standin.py) behind Prism as a validating proxy:
settings.GITEA_URL points at Prism, so every request of the adapter and every answer it gets is
checked against Gitea's API description; a test fails if Prism refused anything.
"""

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache

from aiworker.celery import app
from tests import factories
from tests.contract.prism import Prism
from tests.contract.standin import GiteaStandIn

OWNER, REPO = "acme", "shop"


@pytest.fixture(scope="session")
def _gitea_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GiteaStandIn, Prism]]:
    standin = GiteaStandIn().start()
    prism = Prism(upstream=standin.url, workdir=Path(tmp_path_factory.mktemp("prism")))
    yield standin, prism
    prism.stop()
    standin.stop()


@pytest.fixture
def gitea(_gitea_servers, settings) -> Iterator[GiteaStandIn]:
    standin, prism = _gitea_servers
    standin.reset()
    standin.add_repo(OWNER, REPO, branches=("staging", "production"))
    settings.GITEA_URL = prism.url
    settings.GITEA_TOKEN = "test-token"
    settings.GITEA_TIMEOUT = 10.0
    prism.mark()
    yield standin
    violations = prism.violations()
    assert not violations, "Prism refused requests or answers:\n" + "\n".join(violations)


@pytest.fixture(autouse=True)
def _eager_jobs_and_fresh_throttle() -> Iterator[None]:
    """Jobs run in-process on both databases (with REDIS_URL Celery would queue them for a
    worker the tests do not start); the webhook throttle counts from zero in every test."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    cache.clear()
    yield
    app.conf.task_always_eager = before
    cache.clear()


@pytest.fixture
def repo_project(db):
    return factories.make_project(gitea_owner=OWNER, gitea_repo=REPO)


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_headers(project, body: bytes, *, event: str, delivery: str) -> dict[str, str]:
    return {
        "HTTP_X_GITEA_EVENT": event,
        "HTTP_X_GITEA_DELIVERY": delivery,
        "HTTP_X_GITEA_SIGNATURE": sign(project.webhook_secret, body),
    }


def payload_bytes(data: dict) -> bytes:
    return json.dumps(data).encode()
