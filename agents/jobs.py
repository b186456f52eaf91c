"""Periodic jobs of the agents app (Celery)."""

import logging

from celery import shared_task
from django.conf import settings

from agents import lifecycle, pods, services

logger = logging.getLogger(__name__)


@shared_task(name="agents.jobs.mark_stale_agents_offline")
def mark_stale_agents_offline() -> int:
    return len(services.agent_mark_stale_offline())


@shared_task(name="agents.jobs.autoscale_agent_pods")
def autoscale_agent_pods() -> dict[str, dict]:
    """Agent pods follow each project's claimable backlog (no-op while pods are off)."""
    if not (pods.enabled() and settings.AGENT_AUTOSCALE):
        return {}
    decisions = lifecycle.agents_autoscale()
    return {
        slug: {"create": d.create, "delete": list(d.delete)}
        for slug, d in decisions.items()
        if d.create or d.delete
    }
