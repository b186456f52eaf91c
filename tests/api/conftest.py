import pytest
from rest_framework.test import APIClient

from tests import factories


@pytest.fixture
def api(user) -> APIClient:
    """A client logged in (session) as a user with no special permission."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def admin_api(db) -> APIClient:
    client = APIClient()
    client.force_login(factories.make_user(is_superuser=True, is_staff=True))
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()
