"""Per-project roles and what each grants: the one question every surface asks.

Every surface (board, REST API, admin actions, Channels, release services) asks
``user.has_perm(PERM, project)``. The answer comes from django-rules' object backend
(AUTHENTICATION_BACKENDS): rules was chosen over django-guardian because a role here is a
rank in a project (viewer < member < reviewer < releaser < admin), which is a predicate over
one Membership row; guardian would store one row per user, object and permission and need
them kept in step with the membership by hand.

Who else passes:
- an active superuser passes every check (Django answers before any backend is asked);
- a user holding the matching global Django permission (granted by staff in the admin,
  e.g. ``tasks.approve_task``) holds it in every project: an operator-wide grant;
- ``settings.PROJECT_DEFAULT_ROLE`` (empty by default) is a role every signed-in user has in
  every project, for a single-team install that wants no membership bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import rules
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import CharField, IntegerField, QuerySet, Value
from django.db.models.functions import Concat

from aiworker.sql_once import Prepared, Slot
from projects.models import Membership, Project

Role = Membership.Role
ORDER = [Role.VIEWER, Role.MEMBER, Role.REVIEWER, Role.RELEASER, Role.ADMIN]
RANK = {role.value: n for n, role in enumerate(ORDER)}

VIEW_BOARD = "projects.view_board"
CREATE_TASK = "tasks.create_task"
EDIT_TASK = "tasks.edit_task"  # edit, move, cancel, requeue, reopen
ANSWER = "tasks.answer_question"
REQUEST_CHANGES = "tasks.request_changes"
DEPLOY_PREVIEW = "deployments.deploy_preview"
APPROVE = "tasks.approve_task"
MERGE_TO_STAGING = "deployments.merge_to_staging"
PROMOTE = "deployments.promote_release"
ROLLBACK = "deployments.rollback_release"
MANAGE_PROJECT = "projects.manage_project"
MANAGE_AGENTS = "agents.manage_agents"
# An agent pod's raw log (the CLI's output: code, commands, whatever it printed) on the console.
VIEW_AGENT_LOG = "agents.view_agent_log"
MANAGE_WEBHOOK_SECRET = "projects.manage_webhook_secret"

# permission -> (the least role that holds it, the global Django permission that also grants it)
PERMISSIONS: dict[str, tuple[str, str | None]] = {
    VIEW_BOARD: (Role.VIEWER, None),
    CREATE_TASK: (Role.MEMBER, None),
    EDIT_TASK: (Role.MEMBER, None),
    ANSWER: (Role.MEMBER, None),
    REQUEST_CHANGES: (Role.MEMBER, None),
    DEPLOY_PREVIEW: (Role.MEMBER, None),
    APPROVE: (Role.REVIEWER, "tasks.approve_task"),
    # Merging was the approvers' right before roles existed; the global grant keeps that.
    MERGE_TO_STAGING: (Role.RELEASER, "tasks.approve_task"),
    PROMOTE: (Role.RELEASER, "deployments.promote_release"),
    ROLLBACK: (Role.RELEASER, "deployments.promote_release"),
    MANAGE_PROJECT: (Role.ADMIN, "projects.change_project"),
    MANAGE_AGENTS: (Role.ADMIN, "agents.change_agent"),
    VIEW_AGENT_LOG: (Role.MEMBER, "agents.view_agent"),
    MANAGE_WEBHOOK_SECRET: (Role.ADMIN, "projects.change_project"),
}


def _project_id(obj: Any) -> int | None:
    if obj is None:
        return None
    if isinstance(obj, Project):
        return obj.pk
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    return getattr(obj, "project_id", None)


@dataclass(frozen=True, slots=True)
class _Grants:
    roles: dict[int, str]  # project id -> role
    perms: frozenset[str]  # global Django permissions, "app_label.codename", direct or by group


_USER = Slot("user_id")


@cache
def _grants_query(vendor: str) -> Prepared:
    """Memberships, and the global permissions ModelBackend would load in two more queries
    (the user's own, then its groups'), as one statement built once: the board asks for both
    on every request (roles for everything, global grants for merge and promote)."""
    user_id = _USER.sentinel
    name = Concat("content_type__app_label", Value("."), "codename", output_field=CharField())
    no_project = Value(None, output_field=IntegerField())
    memberships = Membership.objects.filter(user_id=user_id).values_list("project_id", "role")
    direct, by_group = (
        Permission.objects.filter(**{lookup: user_id})
        .annotate(in_project=no_project, perm=name)
        .order_by()
        .values_list("in_project", "perm")
        for lookup in ("user", "group__user")
    )
    return Prepared(memberships.union(direct, by_group, all=True), _USER)


def _grants_of(user: Any) -> _Grants:
    """Every role and global permission of the user: one query per user object, cached on it
    (as Django caches its permissions)."""
    cached = getattr(user, "_aiworker_grants", None)
    if cached is None:
        roles, perms = {}, set()
        for project_id, what in _grants_query(connection.vendor).rows(user_id=user.pk):
            if project_id is None:
                perms.add(what)
            else:
                roles[project_id] = what
        cached = _Grants(roles=roles, perms=frozenset(perms))
        user._aiworker_grants = cached
    return cached


def _has_global_perm(user: Any, perm: str) -> bool:
    """ModelBackend's answer for a permission without an object, for an active user: a
    superuser holds them all, anyone else those granted directly or by a group."""
    return user.is_superuser or perm in _grants_of(user).perms


def role_of(user: Any, project: Any) -> str | None:
    """The user's role in the project (membership, or the default role), or None."""
    if not user or not user.is_authenticated or not user.is_active:
        return None
    pid = _project_id(project)
    role = _grants_of(user).roles.get(pid) if pid is not None else None
    default = getattr(settings, "PROJECT_DEFAULT_ROLE", "") or None
    if default and (role is None or RANK[default] > RANK[role]):
        return default
    return role


def _predicate(perm: str) -> rules.Predicate:
    least, global_perm = PERMISSIONS[perm]

    @rules.predicate(name=f"holds {perm}")
    def holds(user: Any, obj: Any = None) -> bool:
        if not user or not user.is_authenticated or not user.is_active:
            return False
        if global_perm and _has_global_perm(user, global_perm):
            return True
        if obj is None:
            return False
        role = role_of(user, obj)
        return role is not None and RANK[role] >= RANK[least]

    return holds


for _perm in PERMISSIONS:
    rules.add_perm(_perm, _predicate(_perm))


def needed_role(perm: str) -> str:
    return str(PERMISSIONS[perm][0])


def denied_message(perm: str, project: Any = None) -> str:
    where = f" in project '{project.slug}'" if isinstance(project, Project) else ""
    return f"This needs the '{needed_role(perm)}' role{where} (permission {perm})."


def visible_projects(user: Any, perm: str = VIEW_BOARD) -> QuerySet[Project]:
    """The projects where the user holds ``perm``: what pages and API lists show."""
    projects = Project.objects.all()
    if not user or not user.is_authenticated or not user.is_active:
        return projects.none()
    if user.is_superuser:
        return projects
    least, global_perm = PERMISSIONS[perm]
    if global_perm and _has_global_perm(user, global_perm):
        return projects
    default = getattr(settings, "PROJECT_DEFAULT_ROLE", "") or None
    if default and RANK[default] >= RANK[least]:
        return projects
    enough = [r.value for r in ORDER if RANK[r.value] >= RANK[least]]
    return projects.filter(memberships__user_id=user.pk, memberships__role__in=enough)


def role_names() -> list[str]:
    return [r.value for r in ORDER]


# An agent holds no membership: what it may do follows from how an operator or a project admin
# registered it. A planning agent (can-plan) acts as a member for planning, in its project
# (or in every project when it has none): it sees the board, creates tasks and edits them (their
# specification, their subtasks). Nothing else: approving, releasing and managing stay people's.
PLANNER_PERMISSIONS = frozenset({VIEW_BOARD, CREATE_TASK, EDIT_TASK})


def agent_has_perm(agent: Any, perm: str, project: Any = None) -> bool:
    """The same question as ``user.has_perm(perm, project)``, for an agent (Actor.has_perm)."""
    if agent is None or getattr(agent, "revoked_at", None) is not None:
        return False
    if not getattr(agent, "can_plan", False) or perm not in PLANNER_PERMISSIONS:
        return False
    pid = _project_id(project)
    if pid is None:
        return False
    return agent.project_id is None or agent.project_id == pid


def agent_denied_message(agent: Any, perm: str, project: Any = None) -> str:
    where = f" in project '{project.slug}'" if isinstance(project, Project) else ""
    if not getattr(agent, "can_plan", False):
        why = "planning tools need the can-plan flag (an operator sets it on the agent)"
    elif agent.project_id is not None and agent.project_id != _project_id(project):
        why = "it works only on its own project"
    else:
        why = f"agents never hold {perm}"
    return f"Agent {agent.name} may not do this{where} (permission {perm}): {why}."
