"""The local driver: each environment is the project's run command on a loopback port.

An environment (a preview, staging or production) lives in LOCAL_DEPLOY_DIR/<namespace>/:
    worktree/     a git worktree of the commit, from the project's bare repository
    output.log    what the run command printed (its last lines explain a failure)
    state.json    pid, port, commit, ids: what a restarted platform reads to reconcile
The command runs in a session of its own (so stopping it stops its children too) with a small
environment: PATH, HOME, locale, PORT and the project's preview_env, never the platform's own
settings or secrets. It is ready when http://127.0.0.1:<port><health_path> answers below 500;
a command that exits first, or never answers within LOCAL_DEPLOY_READY_TIMEOUT, fails the
deploy with its last output. Ports are chosen under a lock so two environments never share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from deployments.drivers.base import DeployFailed, ManagedResource, Place, parse_time
from projects.forges import local_git
from projects.forges.local import repository_path
from projects.models import Project

HOST = "127.0.0.1"
OUTPUT_SHOWN = 2000  # characters of the command's output quoted in a failure
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
POLL_EVERY = 0.2
MARKER = "AIWORKER_LOCAL_DEPLOY"  # in the command's environment: proves a pid is still ours
PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")

# Commands this process started: polling them reaps them, so a dead one is not a zombie.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Running:
    """What state.json says about one environment."""

    key: str
    pid: int
    port: int
    commit_sha: str
    environment: str
    project_id: int | None
    task_id: int | None
    deployed_at: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


class LocalDriver:
    name = "local"
    needs_image = False

    def __init__(self, root: Path, *, ready_timeout: float) -> None:
        self.root = Path(root)
        self.ready_timeout = ready_timeout

    @classmethod
    def from_settings(cls) -> LocalDriver:
        return cls(settings.LOCAL_DEPLOY_DIR, ready_timeout=settings.LOCAL_DEPLOY_READY_TIMEOUT)

    # --- the interface ------------------------------------------------------------------------

    def apply(self, place: Place, manifests: list[dict[str, Any]]) -> str:
        """Start the run command from `place.commit_sha`; the URL once it answers."""
        project = Project.objects.filter(slug=place.project_slug).first()
        if project is None:
            raise DeployFailed(f"Project {place.project_slug} does not exist.")
        if not project.run_command.strip():
            raise DeployFailed(f"Project {project.slug} has no run command to start.")
        if not place.commit_sha:
            raise DeployFailed("No commit to deploy.")
        # One deploy of an environment at a time (a push and the agent's trigger_preview_deploy
        # both ask for the same commit): the second finds it running and keeps it.
        with self._locked(f".{place.namespace}.lock"):
            running = self.running(place.namespace)
            health_path = project.health_path
            if (
                running is not None
                and running.commit_sha == place.commit_sha
                and self.is_alive(running)
                and _answers(f"http://{HOST}:{running.port}{health_path}")
            ):
                return running.url
            return self._replace(project, place)

    def _replace(self, project: Project, place: Place) -> str:
        self._stop(place.namespace)
        home = self.root / place.namespace
        home.mkdir(parents=True, exist_ok=True)
        worktree = home / "worktree"
        self._remove_worktree(project, worktree)
        try:
            local_git.run(
                repository_path(project),
                "worktree",
                "add",
                "--quiet",
                "--detach",
                str(worktree),
                place.commit_sha,
            )
        except local_git.GitFailed as exc:
            raise DeployFailed(f"Cannot check out {place.commit_sha[:12]}: {exc.message}") from None
        with self._locked(".ports.lock"):
            port = self._free_port()
            process = self._start(project, place, worktree=worktree, port=port)
            self._write_state(
                Running(
                    key=place.namespace,
                    pid=process.pid,
                    port=port,
                    commit_sha=place.commit_sha,
                    environment=place.environment,
                    project_id=project.pk,
                    task_id=place.task_id,
                    deployed_at=timezone.now().isoformat(),
                )
            )
        self._wait_ready(place.namespace, process, f"http://{HOST}:{port}{project.health_path}")
        return f"http://{HOST}:{port}/"

    def destroy(self, places: Iterable[Place]) -> None:
        for place in places:
            self._remove(place.namespace)

    def status(self, place: Place) -> str:
        running = self.running(place.namespace)
        if running is None:
            return "absent"
        return "ready" if self.is_alive(running) else "failed"

    def list_managed(self) -> list[ManagedResource]:
        return [
            ManagedResource(
                key=r.key,
                environment=r.environment,
                project_id=r.project_id,
                task_id=r.task_id,
                deployed_at=parse_time(r.deployed_at),
            )
            for r in self.all_running()
        ]

    def remove_managed(self, resources: Iterable[ManagedResource]) -> None:
        for resource in resources:
            self._remove(resource.key)

    # --- what a restarted platform reads ------------------------------------------------------

    def all_running(self) -> list[Running]:
        """Every environment with a state file, alive or not."""
        if not self.root.is_dir():
            return []
        found = (self.running(home.name) for home in sorted(self.root.iterdir()) if home.is_dir())
        return [r for r in found if r is not None]

    def running(self, key: str) -> Running | None:
        try:
            data = json.loads((self.root / key / "state.json").read_text())
            return Running(**data)
        except (OSError, ValueError, TypeError):
            return None

    def is_alive(self, running: Running) -> bool:
        child = _children.get(running.pid)
        if child is not None and child.poll() is not None:
            _children.pop(running.pid, None)
            return False
        try:
            os.kill(running.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, though not ours to signal; the marker check below decides
        return _is_ours(running.pid, running.key)

    def last_output(self, key: str) -> str:
        try:
            with open(self.root / key / "output.log", "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 4 * OUTPUT_SHOWN))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return text[-OUTPUT_SHOWN:].strip()

    # --- processes ----------------------------------------------------------------------------

    def _start(
        self, project: Project, place: Place, *, worktree: Path, port: int
    ) -> subprocess.Popen[bytes]:
        command = project.run_command.replace("{port}", str(port))
        environment = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        environment.update({str(k): str(v) for k, v in (project.preview_env or {}).items()})
        # The platform's own interpreter first: `python …` works inside its virtualenv too.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        environment.update({"PATH": path, "PORT": str(port), MARKER: place.namespace})
        with open(self.root / place.namespace / "output.log", "wb") as log:
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=worktree,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[process.pid] = process
        return process

    def _wait_ready(self, key: str, process: subprocess.Popen[bytes], health_url: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            code = process.poll()
            if code is not None:
                _children.pop(process.pid, None)
                raise DeployFailed(
                    f"The run command exited with code {code} before {health_url} answered. "
                    f"Its last output:\n{self.last_output(key) or '(nothing)'}"
                )
            if _answers(health_url):
                return
            if time.monotonic() > deadline:
                self._stop(key)
                raise DeployFailed(
                    f"{health_url} did not answer within {self.ready_timeout:g}s; the command "
                    f"was stopped. Its last output:\n{self.last_output(key) or '(nothing)'}"
                )
            time.sleep(POLL_EVERY)

    def _stop(self, key: str) -> None:
        running = self.running(key)
        if running is None or not self.is_alive(running):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and self.is_alive(running):
            time.sleep(0.05)
        if self.is_alive(running):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(running.pid, signal.SIGKILL)
            child = _children.pop(running.pid, None)
            if child is not None:
                child.wait(timeout=STOP_GRACE)

    def _remove(self, key: str) -> None:
        """Stop the command and remove the worktree; a gone environment is not an error."""
        home = self.root / key
        if not home.is_dir():
            return
        with self._locked(f".{key}.lock"):
            self._stop(key)
            running = self.running(key)
            project = None
            if running is not None and running.project_id is not None:
                project = Project.objects.filter(pk=running.project_id).first()
            self._remove_worktree(project, home / "worktree")
            shutil.rmtree(home, ignore_errors=True)

    @staticmethod
    def _remove_worktree(project: Project | None, worktree: Path) -> None:
        if project is not None and (repository_path(project) / "HEAD").exists():
            repo = repository_path(project)
            local_git.run(repo, "worktree", "remove", "--force", str(worktree), check=False)
            shutil.rmtree(worktree, ignore_errors=True)
            local_git.run(repo, "worktree", "prune", check=False)
        else:
            shutil.rmtree(worktree, ignore_errors=True)

    # --- ports and state ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """A lock file under the root, held across threads and processes of this machine."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / name, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _free_port(self) -> int:
        """A port no recorded environment holds and the system says is free (under the lock:
        an environment records its port before the next one is chosen)."""
        taken = {r.port for r in self.all_running() if self.is_alive(r)}
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((HOST, 0))
                port = int(probe.getsockname()[1])
            if port not in taken:
                return port
        raise DeployFailed("No free loopback port found.")

    def _write_state(self, running: Running) -> None:
        path = self.root / running.key / "state.json"
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(running.__dict__))
        partial.replace(path)


# Straight to the loopback port: an HTTP(S)_PROXY in the platform's environment is not asked.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _direct.open(url, timeout=2) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _is_ours(pid: int, key: str) -> bool:
    """Whether `pid` is still the command started for `key`, not a reused pid. Linux says
    through /proc; elsewhere the pid's existence is all we can check."""
    environ = Path(f"/proc/{pid}/environ")
    if not Path("/proc/self/environ").exists():
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False  # a zombie: exited, not yet reaped by its parent
        return f"{MARKER}={key}".encode() in environ.read_bytes().split(b"\0")
    except OSError:
        return False
