"""The gitops driver: rendered manifests committed to a git repository that Argo CD watches.

Layout (one directory per environment, one file per object):
    preview/<namespace>/NN-<kind>-<name>.yaml
    staging/<project-slug>/…
    production/<project-slug>/…

Every change happens in a temporary clone through the git CLI, is committed only when the
files differ (identical content makes no commit), and is pushed. Commits are serialised by a
lock held per repository across threads and processes on this machine; a push rejected because
another machine pushed first is retried on a fresh clone.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from deployments import manifests as m
from deployments.drivers.argocd import ArgoCD
from deployments.drivers.base import DeployFailed, ManagedResource, Place, parse_time

ENVIRONMENTS = ("preview", "staging", "production")
GIT_TIMEOUT = 120
PUSH_ATTEMPTS = 3
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()
_CREDENTIALS_RE = re.compile(r"(://)[^/@\s]+@")


def redact(text: str) -> str:
    """Drop user:token@ from any URL in a message, so no credential reaches a log or a page."""
    return _CREDENTIALS_RE.sub(r"\1", text)


def is_local(url: str) -> bool:
    return "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url)


def directory_of(place: Place) -> str:
    if place.environment == "preview":
        return f"preview/{place.namespace}"
    return f"{place.environment}/{place.project_slug}"


class GitOpsDriver:
    name = "gitops"
    needs_image = True

    def __init__(
        self,
        url: str,
        *,
        branch: str = "main",
        argocd: ArgoCD | None = None,
        ready_timeout: float = 300.0,
    ) -> None:
        self.url = url
        self.branch = branch
        # Without Argo CD's status (no GITOPS_ARGOCD_NAMESPACE) a commit is all it can know.
        self.argocd = argocd
        self.ready_timeout = ready_timeout

    @classmethod
    def from_settings(cls) -> GitOpsDriver:
        argocd = None
        if settings.GITOPS_ARGOCD_NAMESPACE:
            from deployments.drivers.kubernetes import api_client_from_settings

            argocd = ArgoCD(
                api_client_from_settings("GITOPS_ARGOCD_NAMESPACE is set"),
                namespace=settings.GITOPS_ARGOCD_NAMESPACE,
            )
        return cls(
            settings.GITOPS_REPO_URL,
            branch=settings.GITOPS_BRANCH,
            argocd=argocd,
            ready_timeout=settings.DEPLOY_ROLLOUT_TIMEOUT,
        )

    # --- the interface ------------------------------------------------------------------------

    def apply(self, place: Place, manifests: list[dict[str, Any]]) -> None:
        directory = directory_of(place)
        files = {
            m.file_name(index, manifest): yaml.safe_dump(
                manifest, sort_keys=True, default_flow_style=False
            )
            for index, manifest in enumerate(manifests)
        }
        self.change(
            lambda tree: tree.replace_directory(directory, files), message=f"Deploy {directory}"
        )
        if self.argocd is not None:
            # Ready means reachable: Argo CD synced this commit (or the one that already held
            # these files) and the resources are Healthy.
            self.argocd.wait_ready(place, revision=self.head(), timeout=self.ready_timeout)

    def destroy(self, places: Iterable[Place]) -> None:
        self.remove_directories([directory_of(p) for p in places], verb="Destroy")

    def status(self, place: Place) -> str:
        directory = directory_of(place)
        if not self.read(lambda tree: tree.has_directory(directory)):
            return "absent"
        return self.argocd.status(place) if self.argocd is not None else "ready"

    def list_managed(self) -> list[ManagedResource]:
        return self.read(_scan)

    def remove_managed(self, resources: Iterable[ManagedResource]) -> None:
        self.remove_directories([r.key for r in resources], verb="Collect")

    # --- git ----------------------------------------------------------------------------------

    def remove_directories(self, directories: list[str], *, verb: str) -> bool:
        if not directories:
            return False
        shown = ", ".join(directories[:5])
        if len(directories) > 5:
            shown += f" and {len(directories) - 5} more"
        return self.change(
            lambda tree: tree.remove_directories(directories), message=f"{verb} {shown}"
        )

    def change(self, mutate: Callable[[Tree], None], *, message: str) -> bool:
        """Apply `mutate` to a fresh clone and push it; False when nothing changed."""
        with self._locked():
            last_error = ""
            for _ in range(PUSH_ATTEMPTS):
                with self._clone() as tree:
                    mutate(tree)
                    if self._git(tree.work, "diff", "--cached", "--quiet", check=False) is not None:
                        return False  # exit 0: the index equals HEAD, identical content
                    self._git(tree.work, "commit", "--quiet", "--no-verify", "-m", message)
                    pushed = self._git(
                        tree.work,
                        "push",
                        "--quiet",
                        "origin",
                        f"HEAD:refs/heads/{self.branch}",
                        check=False,
                    )
                    if pushed is not None:
                        return True
                    last_error = self._last_stderr
            raise DeployFailed(f"git push to the gitops repository was refused: {last_error}")

    def read(self, look: Callable[[Tree], Any]) -> Any:
        with self._clone() as tree:
            return look(tree)

    def head(self) -> str:
        """The branch's commit, or '' while the repository is empty (tests and the bench)."""
        self._ensure_repository()
        out = self._run(["git", "ls-remote", self.url, f"refs/heads/{self.branch}"], cwd=None)
        return out.split()[0] if out.strip() else ""

    _last_stderr = ""

    def _ensure_repository(self) -> None:
        if is_local(self.url) and not Path(self.url).exists():
            Path(self.url).parent.mkdir(parents=True, exist_ok=True)
            self._run(
                ["git", "init", "--quiet", "--bare", f"--initial-branch={self.branch}", self.url],
                cwd=None,
            )

    @contextmanager
    def _clone(self) -> Iterator[Tree]:
        # --no-checkout: only the index is read, so the cost does not grow with the number of
        # files in the repository (1,000 previews make 7,000 of them).
        self._ensure_repository()
        with tempfile.TemporaryDirectory(prefix="aiworker-gitops-") as tmp:
            work = Path(tmp) / "repo"
            args = ["git", "clone", "--quiet", "--no-checkout", "--no-tags", "--single-branch"]
            if not is_local(self.url):
                args += ["--depth", "1"]
            # Cloning the branch directly saves an ls-remote; only a repository without the
            # branch yet (the very first commit) takes the second path.
            cloned = self._run(
                [*args, "--branch", self.branch, self.url, str(work)], cwd=None, check=False
            )
            if cloned is not None:
                self._git(work, "read-tree", "HEAD")
            else:
                if "not found" not in self._last_stderr:
                    raise DeployFailed(f"git clone failed: {self._last_stderr}")
                shutil.rmtree(work, ignore_errors=True)
                self._run(["git", "clone", "--quiet", self.url, str(work)], cwd=None)
                self._git(work, "checkout", "--quiet", "--orphan", self.branch)
            yield Tree(self, work)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        key = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        with _thread_locks_guard:
            thread_lock = _thread_locks.setdefault(key, threading.Lock())
        lock_path = Path(settings.VAR_DIR) / f"gitops-{key}.lock"
        with thread_lock, open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _git(self, work: Path, *args: str, check: bool = True) -> str | None:
        return self._run(
            [
                "git",
                "-c",
                "user.name=AiWorker",
                "-c",
                "user.email=aiworker@localhost",
                "-c",
                "commit.gpgsign=false",
                *args,
            ],
            cwd=work,
            check=check,
        )

    def _run(self, args: list[str], *, cwd: Path | None, check: bool = True) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        try:
            done = subprocess.run(
                args, cwd=cwd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT
            )
        except subprocess.TimeoutExpired as exc:
            raise DeployFailed(f"git {args[1]} timed out after {GIT_TIMEOUT}s") from exc
        if done.returncode != 0:
            self._last_stderr = redact(done.stderr.strip()[-500:])
            if not check:
                return None  # type: ignore[return-value]
            command = next((a for a in args[1:] if not a.startswith("-") and "=" not in a), "")
            raise DeployFailed(f"git {command} failed: {self._last_stderr}")
        return done.stdout


class Tree:
    """The index of a clone without a checkout: what is committed is what the index holds."""

    def __init__(self, driver: GitOpsDriver, work: Path) -> None:
        self.driver = driver
        self.work = work

    def git(self, *args: str) -> str:
        return self.driver._git(self.work, *args) or ""

    def paths(self, prefix: str = "") -> list[str]:
        args = ["ls-files", "--cached", "-z"] + ([prefix] if prefix else [])
        return [p for p in self.git(*args).split("\0") if p]

    def has_directory(self, directory: str) -> bool:
        return bool(self.paths(directory + "/"))

    def remove_directories(self, directories: list[str]) -> None:
        for start in range(0, len(directories), 200):  # keep the command line short
            batch = directories[start : start + 200]
            self.git("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *batch)

    def replace_directory(self, directory: str, files: dict[str, str]) -> None:
        self.remove_directories([directory])
        target = self.work / directory
        target.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (target / name).write_text(text)
        self.git("add", "--", directory)

    def read_many(self, paths: list[str]) -> list[str]:
        """Contents of committed files, through one `git cat-file --batch`."""
        if not paths:
            return []
        done = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.work,
            input="".join(f":{p}\n" for p in paths).encode(),
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=True,
        )
        out, texts, pos = done.stdout, [], 0
        for _ in paths:
            header_end = out.index(b"\n", pos)
            header = out[pos:header_end].split()
            if header[-1] == b"missing":
                texts.append("")
                pos = header_end + 1
                continue
            size = int(header[2])
            texts.append(out[header_end + 1 : header_end + 1 + size].decode())
            pos = header_end + 1 + size + 1
        return texts


def _scan(tree: Tree) -> list[ManagedResource]:
    namespaces = [
        p
        for p in tree.paths()
        if p.count("/") == 2
        and p.split("/")[0] in ENVIRONMENTS
        and p.split("/")[2].split("-", 1)[-1].startswith("namespace-")
    ]
    found = []
    for path, text in zip(namespaces, tree.read_many(namespaces), strict=True):
        try:
            meta = (yaml.safe_load(text) or {}).get("metadata", {})
        except yaml.YAMLError:
            continue
        labels = meta.get("labels") or {}
        if labels.get(m.LABEL_MANAGED_BY) != m.MANAGED_BY:
            continue
        environment, name = path.split("/")[:2]
        found.append(
            ManagedResource(
                key=f"{environment}/{name}",
                environment=environment,
                project_id=_int(labels.get(m.LABEL_PROJECT_ID)),
                task_id=_int(labels.get(m.LABEL_TASK)),
                deployed_at=parse_time(
                    (meta.get("annotations") or {}).get(m.ANNOTATION_DEPLOYED_AT)
                ),
            )
        )
    return found


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
