"""The deployments page of a project (/projects/<slug>/deployments/): each environment's
current state, live previews with their expiry, the history, and the rollback and extend-TTL
buttons. The buttons call the same services as the API and the admin."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from aiworker import errors
from aiworker.actors import Actor
from deployments import selectors, services
from deployments.models import Deployment, Environment, Release
from projects import roles
from projects.models import Project

HISTORY = 50
IN_PROGRESS_SCAN = 10
MOVING = (Release.Status.PENDING, Release.Status.DEPLOYING)


@login_required
@require_GET
def deployments_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    if not request.user.has_perm(roles.VIEW_BOARD, project):  # as the board (tasks/views.py)
        raise PermissionDenied(roles.denied_message(roles.VIEW_BOARD, project))
    history = list(selectors.deployment_list(project_id=project.pk)[:HISTORY])
    previews = list(
        selectors.deployment_list(project_id=project.pk, environment=Environment.PREVIEW).filter(
            status__in=services.ACTIVE
        )
    )
    releases = list(
        selectors.release_list(project_id=project.pk, environment=Environment.PRODUCTION)[:20]
    )
    # Releases queued or deploying, and an environment's newest release when it failed (a
    # later one settles that failure).
    newest = list(
        selectors.release_list(project_id=project.pk).prefetch_related(None)[:IN_PROGRESS_SCAN]
    )
    first_of = {r.environment: r.pk for r in reversed(newest)}
    in_progress = [
        r
        for r in newest
        if r.status in MOVING
        or (r.status == Release.Status.FAILED and first_of[r.environment] == r.pk)
    ]
    prefetch_related_objects(in_progress, "tasks")  # no query when nothing is in progress
    context = {
        "project": project,
        "in_progress": in_progress,
        "current": selectors.live_deployments(project_id=project.pk),
        "previews": previews,
        "history": history,
        "releases": releases,
        "may_promote": request.user.has_perm(roles.ROLLBACK, project),
    }
    return render(request, "deployments/page.html", context)


@login_required
@require_POST
def extend(request: HttpRequest, slug: str, deployment_id: int) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    get_object_or_404(Deployment, pk=deployment_id, project=project)
    try:
        hours = int(request.POST.get("hours") or 24 * 7)
        deployment = services.preview_extend(
            deployment_id=deployment_id, actor=Actor.of_user(request.user), hours=hours
        )
    except ValueError:
        messages.error(request, "Hours must be a whole number.")
    except errors.DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Preview kept until {deployment.expires_at:%Y-%m-%d %H:%M} UTC.")
    return redirect("deployments-page", slug=project.slug)


@login_required
@require_POST
def rollback(request: HttpRequest, slug: str, release_id: int) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    try:
        if not project.releases.filter(pk=release_id).exists():
            raise errors.NotFound(f"Release {release_id} is not a release of {project.name}.")
        if request.POST.get("confirm") != "yes":
            summary = services.release_rollback_summary(
                release_id=release_id, actor=Actor.of_user(request.user)
            )
            raise errors.InvalidInput(summary["message"] + " Confirm to roll back.")
        release = services.release_rollback(
            release_id=release_id, actor=Actor.of_user(request.user)
        )
    except errors.DomainError as exc:
        messages.error(request, exc.message)
    else:
        level = messages.success if release.status == "live" else messages.error
        level(request, f"Rolled back: release {release.pk} ({release.image}) is {release.status}.")
    return redirect("deployments-page", slug=project.slug)
