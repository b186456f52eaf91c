import os

import pytest
from channels.layers import channel_layers
from django.conf import settings

from tests import factories


def pytest_configure(config: pytest.Config) -> None:
    # PBKDF2 with a million rounds is the slowest part of making a user; tests need no strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests written before per-project roles sign in as plain users and expect a member's
    # rights; the role tests (tests/test_roles*.py) set this back to "" to test membership.
    settings.PROJECT_DEFAULT_ROLE = "member"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings.DATABASE_IS_MYSQL:
        skip = pytest.mark.skip(reason="needs MariaDB: run with DATABASE_URL=mysql://…")
        for item in items:
            if "mariadb" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Give each test its own channel-layer object.

    channels_redis binds a layer's receive lock to the event loop that first receives on it.
    The process-wide daphne of the browser tests keeps consumers receiving from its own loop,
    so a later test that drives a consumer from another loop would share a layer bound to a
    foreign loop ("Two event loops are trying to receive() on one channel layer at once!").
    Consumers already running keep the layer they were built with. The in-memory layer is left
    alone: its groups live in the object, so a fresh one would cut the live server's consumers
    off from the test's broadcasts.
    """
    if "redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"].lower():
        yield
        return
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def project(db):
    return factories.make_project()


@pytest.fixture
def user(db):
    return factories.make_user()


@pytest.fixture
def approver(db):
    return factories.make_user(perms=("tasks.approve_task", "deployments.promote_release"))


@pytest.fixture
def agent_and_token(db):
    return factories.make_agent()


@pytest.fixture
def artifacts_dir() -> str:
    path = os.path.join(settings.BASE_DIR, "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path
