"""Fixtures of the local forge's tests: real bare repositories under a temporary directory."""

import os
import subprocess
from pathlib import Path

import pytest

from projects.forges.local import LocalForge
from tests import factories

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {args[0]} failed: {done.stderr}")
    return done


def commit_file(checkout: Path, name: str, text: str, message: str = "change") -> str:
    (checkout / name).write_text(text)
    git("add", name, cwd=checkout)
    git("commit", "--quiet", "-m", message, cwd=checkout)
    return git("rev-parse", "HEAD", cwd=checkout).stdout.strip()


def refs(repo: Path) -> str:
    return git("--git-dir", str(repo), "for-each-ref", "--format=%(refname) %(objectname)").stdout


@pytest.fixture
def local_project(db, tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    project = factories.make_project(forge="local", deploy_driver="local")
    LocalForge(project).ensure_repository()
    return project


@pytest.fixture
def seeded(local_project, tmp_path):
    """The local project's repository with an app.py on main, and a checkout of it."""
    repo = LocalForge(local_project).path
    checkout = tmp_path / "seed"
    git("clone", "--quiet", str(repo), str(checkout))
    commit_file(checkout, "app.py", "print('hello')\n", "app")
    for branch in ("main", "staging", "production"):
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", "--force", cwd=checkout)
    return repo, checkout
