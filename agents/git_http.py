"""git's smart HTTP for the local forge, at /git/<slug>.git/…, through `git http-backend`.

The agent's token is the credential (`Authorization: Bearer <token>`, or HTTP Basic with the
token as the password). Reading needs a valid token; a push may update only the branches of
the tasks the agent holds: the view reads the ref-update commands at the head of the push and
answers 403 before git sees anything, and the repository's pre-receive hook
(projects/forges/local_git.py) enforces the same list inside git. Once a push went through,
every task branch it moved goes through the service a Gitea push webhook reaches
(tasks/services/forge.py task_branch_pushed): the task's head sha, its pull request, its preview.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import os
import re
import subprocess
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from agents.models import Agent
from agents.services import agent_authenticate
from aiworker import errors
from aiworker.actors import Actor
from projects.forges import local_git
from projects.forges.local import LocalForge
from projects.models import Project
from tasks.models import Task
from tasks.services import forge as task_forge

logger = logging.getLogger(__name__)

SERVICES = ("git-upload-pack", "git-receive-pack")
BACKEND_TIMEOUT = 300
COMMAND_RE = re.compile(r"^([0-9a-f]{40}) ([0-9a-f]{40}) (refs/\S+)$")


def _text(status: int, message: str, **headers: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain")
    for name, value in headers.items():
        response[name] = value
    return response


def _token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return password or user  # http://<token>@host/… puts the token in the user part
    return ""


def allowed_refs(*, project: Project, agent: Agent) -> list[str]:
    """The branches the agent may push: those of the tasks it holds in this project."""
    tasks = Task.objects.filter(project=project, assigned_agent=agent)
    return sorted(
        f"refs/heads/{task.branch_name or task_forge.branch_name_for(task)}" for task in tasks
    )


def pushed_commands(body: bytes) -> list[tuple[str, str, str]]:
    """(old, new, ref) of each ref update at the head of a receive-pack request: the pkt-lines
    before the first flush; the pack itself follows and is git's business."""
    commands, pos = [], 0
    while pos + 4 <= len(body):
        size = int(body[pos : pos + 4], 16)
        if size == 0:
            break
        line = body[pos + 4 : pos + size].split(b"\0", 1)[0].rstrip(b"\n").decode()
        pos += size
        match = COMMAND_RE.match(line)
        if match:
            commands.append((match.group(1), match.group(2), match.group(3)))
    return commands


@csrf_exempt
def git_http(request: HttpRequest, slug: str, path: str) -> HttpResponse:
    project = Project.objects.filter(slug=slug, forge=Project.Forge.LOCAL).first()
    if project is None:
        return _text(404, f"No local repository {slug}.git here.")
    if path == "info/refs" and request.method in ("GET", "HEAD"):
        service = request.GET.get("service", "")
    elif path in SERVICES and request.method == "POST":
        service = path
    else:
        service = ""
    if service not in SERVICES:
        return _text(404, "Only git's smart HTTP protocol is served here.")
    try:
        agent = agent_authenticate(_token(request))
    except errors.PermissionDenied as exc:
        return _text(401, exc.message, **{"WWW-Authenticate": 'Basic realm="AiWorker git"'})
    if agent.project_id and agent.project_id != project.pk:
        return _text(403, f"Agent {agent.name} works on another project.")
    forge = LocalForge(project)
    repo = forge.repo()
    body = request.read()
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return _text(400, "The request body is not valid gzip.")
    allowed = allowed_refs(project=project, agent=agent)
    pushing = service == "git-receive-pack" and request.method == "POST"
    if pushing:
        try:
            commands = pushed_commands(body)
        except ValueError:
            return _text(400, "Not a git push.")
        refused = [
            ref for _, new, ref in commands if ref not in allowed or new == local_git.ZERO_SHA
        ]
        if refused:
            logger.warning("push refused: agent %s to %s %s", agent.name, slug, refused[:5])
            return _text(
                403,
                f"Agent {agent.name} may push only to the branches of the tasks it holds "
                f"({', '.join(a.removeprefix('refs/heads/') for a in allowed) or 'none'}); "
                f"refused: {', '.join(refused[:5])}.",
            )
        before = local_git.branches(repo)
    response = _backend(request, repo=repo, path=path, body=body, agent=agent, allowed=allowed)
    if pushing:
        _after_push(project, forge, before=before, after=local_git.branches(repo), agent=agent)
    return response


def _backend(
    request: HttpRequest, *, repo: Path, path: str, body: bytes, agent: Agent, allowed: list[str]
) -> HttpResponse:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(repo.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{repo.name}/{path}",
        "REQUEST_METHOD": request.method or "GET",
        "QUERY_STRING": request.META.get("QUERY_STRING", ""),
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": agent.name,  # also what switches receive-pack on in http-backend
        "REMOTE_ADDR": request.META.get("REMOTE_ADDR", ""),
        "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        "AIWORKER_ALLOWED_REFS": " ".join(allowed),
    }
    try:
        done = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=BACKEND_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return _text(504, f"git took longer than {BACKEND_TIMEOUT}s.")
    head, _, content = done.stdout.partition(b"\r\n\r\n")
    if not _:
        head, _, content = done.stdout.partition(b"\n\n")
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split(" ", 1)[0])
        elif name:
            headers[name.strip()] = value.strip()
    if done.returncode != 0 and status == 200 and not content:
        logger.warning("git http-backend failed: %s", done.stderr.decode(errors="replace")[-300:])
        return _text(500, "git http-backend failed.")
    response = HttpResponse(content, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _after_push(
    project: Project,
    forge: LocalForge,
    *,
    before: dict[str, str],
    after: dict[str, str],
    agent: Agent,
) -> None:
    actor = Actor.of_agent(agent)
    for ref, sha in sorted(after.items()):
        if before.get(ref) == sha:
            continue
        forge.branch_pushed(head=ref.removeprefix("refs/heads/"), sha=sha)
        outcome = task_forge.task_branch_pushed(project=project, ref=ref, after=sha, actor=actor)
        logger.info("push to %s %s: %s", project.slug, ref, outcome)
