"""Services for agent pods: start, stop, status from pod phase, and the autoscaler.

The platform starts an agent by creating an Agent (token shown to nobody: it goes straight
into the pod's Secret) and its pod; it stops one by deleting the pod (the runner releases its
task on SIGTERM), giving back any task it still holds and revoking the token.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from django.db import transaction

from agents import pods
from agents.models import Agent, AgentStatus
from agents.services import _broadcast_status, agent_create, agent_revoke
from aiworker import errors
from aiworker.actors import Actor
from projects.models import Project
from tasks import rules
from tasks.models import Task
from tasks.states import ACTIVE_STATES, TaskState

logger = logging.getLogger(__name__)

# Pod phase -> agent status when the runner has not said otherwise by heartbeat.
PHASE_STATUS = {
    "Pending": AgentStatus.STARTING,
    "Failed": AgentStatus.ERROR,
    "Succeeded": AgentStatus.OFFLINE,
    "Unknown": AgentStatus.ERROR,
}


def agent_pod_create(*, project: Project, actor: Actor) -> Agent:
    """Start one agent pod working on `project`."""
    pods.namespace()  # NotConfigured before anything is written
    with transaction.atomic():
        name = f"{project.slug[:60]}-pod-{secrets.token_hex(3)}"
        agent, token = agent_create(name=name, project=project)
        agent.pod_name = pods.create_agent_pod(
            agent_id=agent.pk, agent_name=agent.name, project_slug=project.slug, token=token
        )
        agent.pod_namespace = pods.namespace()
        agent.status_message = f"Pod started by {actor.label}."
        agent.save(update_fields=["pod_name", "pod_namespace", "status_message"])
    logger.info("agent pod %s started for project %s", agent.pod_name, project.slug)
    return agent


def agent_pod_delete(*, agent_id: int, actor: Actor, reason: str = "") -> Agent:
    """Stop an agent's pod; its active tasks go back to the backlog and its token is revoked."""
    from tasks.services import task_transition

    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise errors.NotFound(f"Agent {agent_id} does not exist.")
    if not agent.pod_name:
        raise errors.Conflict(f"Agent {agent.name} has no pod to delete.")
    pods.delete_agent_pod(agent_id=agent.pk)
    why = reason or f"Agent pod {agent.pod_name} deleted by {actor.label}."
    for task_id in Task.objects.filter(
        assigned_agent_id=agent.pk, state__in=ACTIVE_STATES
    ).values_list("pk", flat=True):
        try:
            task_transition(task_id=task_id, to_state=TaskState.BACKLOG, actor=actor, note=why)
        except errors.DomainError:
            continue  # released by the runner itself meanwhile
    agent_revoke(agent_id=agent.pk)
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        agent.status, agent.status_message = AgentStatus.OFFLINE, why[:500]
        agent.pod_name = ""
        agent.save(update_fields=["status", "status_message", "pod_name"])
        _broadcast_status(agent)
    return agent


def agent_sync_pod_phases() -> int:
    """Agent status from pod phase: a pod that is pending, failed or gone says more than the
    last heartbeat. A running pod is left to heartbeats and the watchdog."""
    phases = pods.pod_phases()
    changed = 0
    for agent in Agent.objects.exclude(pod_name="").filter(revoked_at__isnull=True):
        phase = phases.get(agent.pod_name, "Missing")
        status = PHASE_STATUS.get(phase, AgentStatus.OFFLINE if phase == "Missing" else None)
        if status is None or status == agent.status:
            continue
        if status == AgentStatus.STARTING and agent.last_heartbeat_at is not None:
            continue
        with transaction.atomic():
            locked = Agent.objects.select_for_update().get(pk=agent.pk)
            locked.status, locked.status_message = status, f"Pod {phase.lower()}."
            locked.save(update_fields=["status", "status_message"])
            _broadcast_status(locked)
        changed += 1
    return changed


# --- the autoscaler ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodAgent:
    id: int
    status: str


@dataclass(frozen=True)
class ScaleDecision:
    create: int
    delete: tuple[int, ...]


def decide_scale(
    *, claimable: int, max_agents: int, agents: list[PodAgent], wip_room: int | None = None
) -> ScaleDecision:
    """How many pods to start and which to stop, so pods follow the claimable backlog.

    Busy pods keep their work. Idle (or still starting) pods count as able to take a task.
    Dead pods (error, offline) are cleaned up and do not count. The total never exceeds the
    project's maximum, and no more pods are wanted than the in-progress WIP limit can admit.
    """
    dead = tuple(a.id for a in agents if a.status in (AgentStatus.ERROR, AgentStatus.OFFLINE))
    live = [a for a in agents if a.id not in dead]
    busy = [a for a in live if a.status == AgentStatus.BUSY]
    spare = [a for a in live if a.status != AgentStatus.BUSY]
    work = claimable if wip_room is None else min(claimable, max(wip_room, 0))
    wanted = min(max(max_agents, 0), len(busy) + work)
    if len(live) < wanted:
        return ScaleDecision(create=wanted - len(live), delete=dead)
    # Idle ones go first, newest first (a starting pod may be about to claim).
    surplus = len(live) - max(wanted, len(busy))
    removable = sorted(spare, key=lambda a: (a.status != AgentStatus.IDLE, -a.id))
    return ScaleDecision(create=0, delete=dead + tuple(a.id for a in removable[:surplus]))


def agents_autoscale(*, actor: Actor | None = None) -> dict[str, ScaleDecision]:
    """One autoscaler pass over every project: start and stop agent pods to fit the backlog."""
    actor = actor or Actor.system("agent autoscaler")
    pods.namespace()
    try:
        agent_sync_pod_phases()
    except errors.DomainError as exc:
        logger.warning("pod phases not read: %s", exc)
    decisions: dict[str, ScaleDecision] = {}
    for project in Project.objects.all():
        limit = project.wip_limit(TaskState.IN_PROGRESS)
        in_progress = Task.objects.filter(project=project, state__in=ACTIVE_STATES).count()
        decision = decide_scale(
            claimable=rules.claimable(Task.objects.filter(project=project)).count(),
            max_agents=project.max_concurrent_agents,
            agents=[
                PodAgent(id=a.pk, status=a.status)
                for a in Agent.objects.filter(project=project, revoked_at__isnull=True).exclude(
                    pod_name=""
                )
            ],
            wip_room=None if limit is None else limit - in_progress,
        )
        decisions[project.slug] = decision
        for agent_id in decision.delete:
            try:
                agent_pod_delete(agent_id=agent_id, actor=actor, reason="Scaled down.")
            except errors.DomainError as exc:
                logger.warning("autoscaler could not stop agent %s: %s", agent_id, exc)
        for _ in range(decision.create):
            try:
                agent_pod_create(project=project, actor=actor)
            except errors.DomainError as exc:
                logger.warning("autoscaler could not start a pod for %s: %s", project.slug, exc)
                break
    return decisions
