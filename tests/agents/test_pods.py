"""Agent pods through the official kubernetes client against the stand-in API server."""

import kubernetes_validate
import pytest

from agents import lifecycle, pods
from agents.models import Agent, AgentStatus
from aiworker import errors
from tasks.models import TaskEvent
from tasks.states import TaskState
from tests import factories
from tests.agents.conftest import NAMESPACE


def test_rendered_pod_is_valid_and_keeps_secrets_out(settings):
    settings.AGENT_POD_NAMESPACE = NAMESPACE
    manifest = pods.render_pod(
        agent_id=7, agent_name="web-pod-1", project_slug="web", command='claude -p "x"'
    )
    kubernetes_validate.validate(manifest, "1.31", strict=True)
    container = manifest["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["AGENT_COMMAND"]["value"] == 'claude -p "x"'
    assert env["AIWORKER_AGENT_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "aiworker-agent-7-token",
        "key": "token",
    }
    assert manifest["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["memory"] == "4Gi"
    assert manifest["metadata"]["labels"]["aiworker.dev/agent"] == "7"


def test_pods_off_answers_not_configured_and_writes_nothing(project, settings):
    settings.AGENT_POD_NAMESPACE = ""
    with pytest.raises(errors.NotConfigured, match="AGENT_POD_NAMESPACE"):
        lifecycle.agent_pod_create(project=project, actor=factories.system())
    assert Agent.objects.count() == 0


def test_create_and_delete_agent_pod(kube, project):
    agent = lifecycle.agent_pod_create(project=project, actor=factories.system())

    assert agent.pod_name == f"aiworker-agent-{agent.pk}"
    assert agent.pod_namespace == NAMESPACE
    assert agent.project == project and agent.status == AgentStatus.STARTING
    assert set(kube.pods(NAMESPACE)) == {agent.pod_name}
    secret = kube.secrets(NAMESPACE)[f"aiworker-agent-{agent.pk}-token"]
    token = secret["stringData"]["token"]
    assert Agent.objects.get(pk=agent.pk).token_hash == pods_hash(token)
    assert token not in str(kube.pods(NAMESPACE)[agent.pod_name])

    task = factories.make_task(project=project, state=TaskState.IN_PROGRESS, assigned_agent=agent)
    lifecycle.agent_pod_delete(agent_id=agent.pk, actor=factories.system())

    agent.refresh_from_db()
    task.refresh_from_db()
    assert kube.pods(NAMESPACE) == {} and kube.secrets(NAMESPACE) == {}
    assert agent.status == AgentStatus.OFFLINE and agent.is_revoked and agent.pod_name == ""
    assert task.state == TaskState.BACKLOG and task.assigned_agent is None
    assert TaskEvent.objects.filter(task=task, to_state=TaskState.BACKLOG).count() == 1


def test_delete_unknown_or_podless_agent_is_refused(kube, project):
    with pytest.raises(errors.NotFound):
        lifecycle.agent_pod_delete(agent_id=999999, actor=factories.system())
    agent, _ = factories.make_agent(project=project)
    with pytest.raises(errors.Conflict, match="no pod"):
        lifecycle.agent_pod_delete(agent_id=agent.pk, actor=factories.system())
    agent.refresh_from_db()
    assert not agent.is_revoked and agent.status == AgentStatus.STARTING
    assert kube.requests == []


def test_status_follows_pod_phase(kube, project):
    agent = lifecycle.agent_pod_create(project=project, actor=factories.system())
    kube.set_phase(NAMESPACE, agent.pod_name, "Failed")
    assert lifecycle.agent_sync_pod_phases() == 1
    agent.refresh_from_db()
    assert agent.status == AgentStatus.ERROR and agent.status_message == "Pod failed."

    kube.objects.pop((NAMESPACE, "pods", agent.pod_name))
    lifecycle.agent_sync_pod_phases()
    agent.refresh_from_db()
    assert agent.status == AgentStatus.OFFLINE


def test_pod_log_tail(kube, project):
    agent = lifecycle.agent_pod_create(project=project, actor=factories.system())
    kube.logs[agent.pod_name] = "\n".join(f"line {i}" for i in range(500))
    assert pods.pod_log_tail(pod=agent.pod_name, lines=3) == "line 497\nline 498\nline 499"
    assert pods.pod_log_tail(pod="no-such-pod") == ""


def pods_hash(token):
    from agents.services import hash_token

    return hash_token(token)


def test_admin_action_deletes_pods(kube, project, client):
    from django.contrib.auth.models import User

    admin_user = User.objects.create_superuser("root", "root@example.test", "pw")
    agent = lifecycle.agent_pod_create(project=project, actor=factories.system())
    podless, _ = factories.make_agent()
    client.force_login(admin_user)
    response = client.post(
        "/admin/agents/agent/",
        {"action": "delete_pods", "_selected_action": [agent.pk, podless.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert f"Pod of {agent.name} deleted." in page and "has no pod to delete" in page
    assert kube.pods(NAMESPACE) == {}
    podless.refresh_from_db()
    assert not podless.is_revoked
