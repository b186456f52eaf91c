"""Schemathesis against the live app: every operation in /api/schema/, several hundred generated
requests (its coverage, fuzzing and stateful phases), and not one 5xx.

Schemathesis runs from a virtualenv of its own (`make schemathesis-deps` → .venv-schemathesis,
pinned with hashes in requirements.txt beside this file): it only talks HTTP to the server, and
its pins need not agree with the project's. The server is the real ASGI application under
daphne on a free port, the process's one in-process server (tests/board/live_server.py), so it
serves this run's test database on SQLite and MariaDB alike. What is checked, the seed and the
number of cases are in schemathesis.toml beside this file. On a failure the assertion message is
schemathesis's own report, with a curl line for each case. tests/fuzz/ fuzzes the same API with
hypothesis inside the test client, where an exception surfaces with its traceback.
"""

import os
import re
import subprocess
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from aiworker.throttles import TokenRateThrottle
from deployments.models import Deployment, Driver, Environment, Release
from projects.api_tokens import api_token_create
from tasks.models import TaskQuestion
from tasks.states import TaskState
from tests import factories
from tests.board.live_server import start_daphne

pytestmark = pytest.mark.django_db(transaction=True)

HERE = Path(__file__).resolve().parent
SCHEMATHESIS = Path(settings.BASE_DIR) / ".venv-schemathesis" / "bin" / "schemathesis"
MIN_CASES = 300  # about 3,400 today; fewer than this means the configuration lost phases


S = TaskState


def _seed_data(admin) -> str:
    """What generated ids can hit: tasks in several states, a dependency, an open question, an
    agent, a live staging release and a ready preview; returns an API token of the superuser,
    who may do everything the API offers."""
    project = factories.make_project(slug="demo")
    states = (S.BACKLOG, S.IN_PROGRESS, S.NEEDS_INPUT, S.READY_TO_TEST, S.STAGING)
    tasks = [factories.make_task(project=project, title=f"{s} task", state=s) for s in states]
    tasks[1].depends_on.add(tasks[0])
    agent, _ = factories.make_agent(name="fuzzed", project=project)
    TaskQuestion.objects.create(task=tasks[2], agent=agent, question="Which login?")
    release = Release.objects.create(
        project=project, environment=Environment.STAGING, status=Release.Status.LIVE
    )
    release.tasks.add(tasks[4])
    Deployment.objects.create(
        project=project,
        task=tasks[3],
        environment=Environment.PREVIEW,
        driver=Driver.GITOPS,
        namespace=f"preview-task-{tasks[3].pk}",
        status=Deployment.Status.READY,
        expires_at=timezone.now() + timedelta(days=1),
    )
    return api_token_create(user=admin, scope="write")[1]


def test_schemathesis_finds_no_server_error(admin_user, settings, monkeypatch, tmp_path):
    if not SCHEMATHESIS.exists():
        pytest.fail(f"schemathesis is not at {SCHEMATHESIS}: run `make schemathesis-deps`")
    # Deployments go to a git repository of this test, never to var/ or a cluster; Gitea and
    # agent pods stay off whatever the environment says: nothing leaves the machine.
    settings.DEPLOY_DRIVER = "gitops"
    settings.GITOPS_REPO_URL = str(tmp_path / "gitops.git")
    settings.VAR_DIR = tmp_path
    settings.GITEA_URL = ""
    settings.AGENT_POD_NAMESPACE = ""
    # Thousands of requests in seconds from one token: the rate limit would answer most of them
    # 429 before they reach a view (it has its own tests in tests/test_rate_limits_csrf.py).
    fuzz_rates = {TokenRateThrottle.scope: "100000/minute"}
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", fuzz_rates)
    token = _seed_data(admin_user)
    url, _stop = start_daphne()  # the process's one server; it outlives the test
    # Not a vacuous run: the token is accepted, so the cases reach the views.
    probe = urllib.request.Request(f"{url}/api/tasks/", headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(probe, timeout=30) as answer:
        assert answer.status == 200

    result = subprocess.run(
        [
            *(str(SCHEMATHESIS), "--config-file", str(HERE / "schemathesis.toml"), "--no-color"),
            *("run", f"{url}/api/schema/", "--report", "junit", "--report-dir", str(tmp_path)),
        ],
        cwd=tmp_path,
        env={**os.environ, "AIWORKER_API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    cases = re.search(r"(\d+) generated", result.stdout)
    assert cases and int(cases.group(1)) >= MIN_CASES, report
    assert "Tested: 37" in result.stdout, report  # every operation of the schema
    print(result.stdout[-1500:])
