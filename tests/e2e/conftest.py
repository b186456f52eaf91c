"""End to end: the real MCP server (uvicorn thread), the Gitea stand-in behind Prism, the gitops
driver on a bare repository, a local bare git repository standing in for the project's Gitea
repository, and `python -m agents.runner` as a real subprocess with a stand-in agent command."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings

# The MCP server answers from uvicorn's threads: the SQLite test database must be a file
# (shared-cache memory databases fail concurrent writers at once instead of waiting).
from tests.mcpbridge.conftest import mcp_url, pytest_configure  # noqa: F401  (fixture, hook)
from tests.projects.conftest import (  # noqa: F401  (fixtures)
    OWNER,
    REPO,
    _eager_jobs_and_fresh_throttle,
    _gitea_servers,
    gitea,
)

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")


def git(*args: str, cwd: Path | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def project_repo(tmp_path) -> Path:
    """A bare repository with main, staging and production: the project's code."""
    bare = tmp_path / "shop.git"
    seed = tmp_path / "seed"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("init", "--quiet", "--initial-branch=main", str(seed))
    (seed / "README.md").write_text("# shop\n")
    git("add", "README.md", cwd=seed)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "init", cwd=seed)
    for branch in ("main", "staging", "production"):
        git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=seed)
    return bare


@pytest.fixture
def mirror_pushes(gitea, project_repo):  # noqa: F811
    """Pushes to the bare repository show up on the Gitea stand-in (a real Gitea hosts the
    repository it reports on; the stand-in keeps only branch names and shas).

    A push returns only once mirrored, as with a real Gitea: the runner opens its PR right
    after pushing, and a polled mirror lagging behind made Gitea answer "no changes" (422).
    The post-receive hook leaves a marker and waits until the mirror removes it."""
    stop = threading.Event()
    hook = project_repo / "hooks" / "post-receive"
    hook.write_text(
        "#!/bin/sh\n"
        'marker="$PWD/mirror-pending-$$"; : > "$marker"; i=0\n'
        'while [ -e "$marker" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n'
    )
    hook.chmod(0o755)

    def mirror() -> None:
        while not stop.wait(0.1):
            pending = list(project_repo.glob("mirror-pending-*"))  # before reading the refs
            refs = git(
                "--git-dir",
                str(project_repo),
                "for-each-ref",
                "--format=%(refname:short) %(objectname)",
                "refs/heads/",
            )
            repo = gitea.repos.get((OWNER, REPO))
            if repo is None:
                continue
            with gitea.lock:
                for line in refs.splitlines():
                    name, sha = line.split()
                    if name.startswith("task/"):
                        repo.branches[name] = sha
            for marker in pending:
                marker.unlink(missing_ok=True)

    thread = threading.Thread(target=mirror, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)


class RunnerProcess:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc, self.log = proc, log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def start_runner(tmp_path, mcp_url, project_repo, mirror_pushes):  # noqa: F811
    started: list[RunnerProcess] = []

    def start(token: str, *, agent_args: str = "", name: str = "runner") -> RunnerProcess:
        clone_url = f"{settings.GITEA_URL.rstrip('/')}/{OWNER}/{REPO}.git"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_CONFIG", "AIWORKER_"))}
        env.update(
            {
                "AIWORKER_MCP_URL": mcp_url,
                "AIWORKER_AGENT_TOKEN": token,
                "AGENT_COMMAND": f"{sys.executable} {FAKE_AGENT} {agent_args}".strip(),
                "WORKDIR": str(tmp_path / name),
                "POLL_INTERVAL": "0.3",
                "HEARTBEAT_INTERVAL": "1",
                # The Gitea clone URL the platform hands out, served by the local bare repo.
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"url.{project_repo}.insteadOf",
                "GIT_CONFIG_VALUE_0": clone_url,
            }
        )
        log = tmp_path / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "agents.runner"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        runner = RunnerProcess(proc, log)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.proc.poll() is None:
            runner.proc.kill()
            runner.proc.wait(timeout=30)
