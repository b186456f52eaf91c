import pytest
from django.test import Client

from tests import factories


@pytest.fixture
def member(db):
    return factories.make_user(username="member")


@pytest.fixture
def member_client(member) -> Client:
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def approver_client(approver) -> Client:
    client = Client()
    client.force_login(approver)
    return client
