"""Writes on a project's forge connection: connecting a project to its Gitea repository, and
the helpers every forge write shares (which forge, which repository, the Gitea client).
A task's own forge writes (branch, pull request, merge) are tasks/services/forge.py's.

No database transaction is held open while the forge is called.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from aiworker import errors
from aiworker.actors import Actor
from projects import forges
from projects.forges import gitea
from projects.models import Project


def webhook_url(project: Project) -> str:
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/api/webhooks/gitea/?project={project.slug}"


def forge_of(project: Project) -> forges.Forge:
    return forges.get_forge(project)


def repo_of(project: Project) -> tuple[str, str]:
    if not project.has_repository:
        raise errors.InvalidInput(
            f"Project {project.slug} has no Gitea repository: set its owner and repository.",
            fields={"gitea_repo": ["Set gitea_owner and gitea_repo."]},
        )
    return project.gitea_owner, project.gitea_repo


def gitea_client() -> gitea.GiteaClient:
    return gitea.client()  # raises NotConfigured before anything else happens


def project_connect(*, project_id: int, actor: Actor) -> Project:
    """Make sure the repository, the flow's branches and our webhook exist; record the hook.

    Running it again finds everything in place and changes nothing.
    """
    if not actor.has_perm("projects.change_project"):
        raise errors.PermissionDenied("Connecting a project needs 'projects.change_project'.")
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise errors.NotFound(f"Project {project_id} does not exist.")
    owner, repo = repo_of(project)
    url = webhook_url(project)
    with gitea_client() as client:
        try:
            client.repos.get(owner=owner, repo=repo)
        except errors.NotFound:
            as_user = client.repos.current_login().lower() == owner.lower()
            client.repos.create(
                owner=owner, repo=repo, default_branch=project.default_branch, as_user=as_user
            )
        for branch in (project.staging_branch, project.production_branch):
            gitea._ensure_branch(client, owner, repo, name=branch, base=project.default_branch)
        hook = next((h for h in client.hooks.list(owner=owner, repo=repo) if h.url == url), None)
        if hook is None:
            hook = client.hooks.create(
                owner=owner, repo=repo, url=url, secret=project.webhook_secret
            )
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project_id)
        if project.gitea_webhook_id != hook.id:
            project.gitea_webhook_id = hook.id
            project.save(update_fields=["gitea_webhook_id", "updated_at"])
    return project
