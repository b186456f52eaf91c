import subprocess
from pathlib import Path

import pytest
import yaml

from tests import factories


class Repo:
    """A real bare git repository in tmp_path, read back with the git CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = str(path)

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "--git-dir", self.url, *args], capture_output=True, text=True, check=False
        ).stdout

    def commits(self) -> int:
        out = self._git("rev-list", "--count", "main").strip()
        return int(out) if out.isdigit() else 0

    def files(self) -> list[str]:
        return sorted(self._git("ls-tree", "-r", "--name-only", "main").split())

    def read(self, path: str) -> dict:
        return yaml.safe_load(self._git("show", f"main:{path}"))

    def directories(self) -> list[str]:
        return sorted({"/".join(f.split("/")[:2]) for f in self.files()})


@pytest.fixture
def gitops(settings, tmp_path) -> Repo:
    settings.DEPLOY_DRIVER = "gitops"
    settings.GITOPS_REPO_URL = str(tmp_path / "gitops.git")
    settings.PREVIEW_DOMAIN = "preview.example.test"
    return Repo(tmp_path / "gitops.git")


@pytest.fixture
def preview_project(db):
    return factories.make_project(
        image_repository="registry.example.test/acme/shop",
        preview_port=8080,
        preview_env={"DJANGO_DEBUG": "1", "bad name": "dropped"},
    )


@pytest.fixture
def preview_task(preview_project):
    return factories.make_task(project=preview_project, state="in_progress", head_sha="a" * 40)


@pytest.fixture
def eager_jobs():
    """With REDIS_URL set, jobs go to a broker no worker reads in tests: run them in-process."""
    from aiworker.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
