import pytest

from tests import factories


@pytest.fixture
def admin_client_(client, db):
    """Django test client logged in as a superuser (the operator of the admin)."""
    client.force_login(factories.make_user(is_superuser=True, is_staff=True))
    return client
