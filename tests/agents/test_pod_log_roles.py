"""An agent pod's log is the CLI's raw output: reading it needs the role that may see the
agents' work (VIEW_AGENT_LOG, role member) in the agent's project. A viewer, a stranger to the
project, or anyone but an operator for a project-less agent is refused through the real views
and gets no line of the log."""

import pytest
from django.test import Client

from agents import lifecycle
from projects.models import Membership
from tests import factories

SECRET_LINE = "cloning\nrunning claude"


@pytest.fixture(autouse=True)
def _membership_decides(settings):
    settings.PROJECT_DEFAULT_ROLE = ""  # tests/conftest.py gives older tests a member's rights


@pytest.fixture
def pod_agent(kube, project):
    agent = lifecycle.agent_pod_create(project=project, actor=factories.system())
    kube.logs[agent.pod_name] = SECRET_LINE
    return agent


def _person(project=None, role=None, perms=()):
    user = factories.make_user(perms=perms)
    if project is not None:
        Membership.objects.create(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_a_member_reads_the_log(project, pod_agent):
    client = _person(project, "member")
    assert 'class="pod-log"' in client.get("/agents/").content.decode()
    assert client.get(f"/agents/{pod_agent.pk}/log/").json()["log"] == SECRET_LINE


def test_a_viewer_is_refused_with_the_role_named(project, pod_agent):
    client = _person(project, "viewer")
    page = client.get("/agents/").content.decode()
    assert f'id="agent-{pod_agent.pk}"' in page  # a viewer sees the agent and its status
    assert "data-log-url" not in page  # but the console offers no log
    answer = client.get(f"/agents/{pod_agent.pk}/log/")
    assert answer.status_code == 403
    assert "'member' role" in answer.json()["error"]
    assert "running claude" not in answer.content.decode()


def test_someone_outside_the_project_does_not_see_the_agent(project, pod_agent):
    client = _person(factories.make_project(), "admin")  # admin elsewhere
    page = client.get("/agents/").content.decode()
    assert f'id="agent-{pod_agent.pk}"' not in page and project.slug not in page
    answer = client.get(f"/agents/{pod_agent.pk}/log/")
    assert answer.status_code == 404
    assert "running claude" not in answer.content.decode()


def test_a_project_less_agents_log_needs_the_operators_permission(kube, project):
    agent, _ = factories.make_agent()  # serves every project; its pod is started by hand
    type(agent).objects.filter(pk=agent.pk).update(pod_name="aiworker-agent-any")
    member = _person(project, "admin")
    refused = member.get(f"/agents/{agent.pk}/log/")
    assert refused.status_code == 403 and "agents.view_agent" in refused.json()["error"]
    assert "running claude" not in refused.content.decode()
    operator = _person(perms=("agents.view_agent",))
    allowed = operator.get(f"/agents/{agent.pk}/log/")  # the stand-in has no such pod: no lines
    assert allowed.status_code == 200 and allowed.json()["pod"] == "aiworker-agent-any"
