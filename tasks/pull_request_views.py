"""The task page's "Pull request" section for projects on the local forge, and its review form.

Thin like tasks/views.py (whose task page renders the section, templates/board/_pull_request.html):
the reads and the write are tasks/local_review.py's. A Gitea project's task page keeps
its link to Gitea; nothing here runs for it.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from aiworker import errors
from aiworker.actors import Actor
from projects import roles
from projects.models import Project
from tasks import local_review
from tasks.forms import ReviewForm
from tasks.models import Task
from tasks.views import _project

ANCHOR = "#pull-request"


def _task_url(project: Project, task_id: int) -> str:
    return reverse("board-task", args=[project.slug, task_id]) + ANCHOR


@login_required
@require_POST
def review(request: HttpRequest, slug: str, task_id: int) -> HttpResponse:
    project = _project(request, slug)  # 404 unknown, 403 without the viewer role
    if not Task.objects.filter(pk=task_id, project=project).exists():
        raise Http404("No such task in this project.")
    if not request.user.has_perm(roles.REQUEST_CHANGES, project):
        raise DjangoPermissionDenied(roles.denied_message(roles.REQUEST_CHANGES, project))
    form = ReviewForm(request.POST)
    try:
        if not form.is_valid():
            if "body" in form.errors:
                raise errors.InvalidInput("Say something: the comment text is required.")
            raise errors.InvalidInput("Choose Comment or Request changes.")
        done = local_review.pull_request_review_add(
            task_id=task_id,
            actor=Actor.of_user(request.user),
            body=form.cleaned_data["body"],
            verdict=form.cleaned_data["verdict"],
        )
    except errors.DomainError as exc:
        messages.error(request, exc.message)
    else:
        if done.sent_back:
            messages.success(request, "Changes requested; the task is back with its agent.")
        else:
            messages.success(request, "Sent: the agent reads it with get_feedback.")
    return redirect(_task_url(project, task_id))


@login_required
@require_GET
def pull_request(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """A local pull request's own address (its html_url) opens its task's page at the PR."""
    project = _project(request, slug)
    task_id = (
        Task.objects.filter(project=project, pr_number=number)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if project.forge != Project.Forge.LOCAL or task_id is None:
        raise Http404("No such pull request in this project.")
    return redirect(_task_url(project, task_id))
