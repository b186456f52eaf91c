"""A signed Gitea delivery replayed under a new X-Gitea-Delivery id: the HMAC is right (the body
is the one Gitea signed with the project's secret), but the event it carries was already
recorded. Dedupe is on the event's own identity, so the replay is a duplicate and nothing
changes: no second delivery, feedback, timeline line or deploy job."""

import json
import threading

import pytest
from django.test import Client

from projects.models import WebhookDelivery
from tasks.models import TaskEvent, TaskFeedback
from tasks.states import TaskState
from tests import factories
from tests.projects.conftest import OWNER, REPO, delivery_headers

URL = "/api/webhooks/gitea/"
REPOSITORY = {"full_name": f"{OWNER}/{REPO}", "name": REPO, "owner": {"login": OWNER}}


@pytest.fixture
def task(repo_project):
    task = factories.make_task(
        project=repo_project,
        title="Checkout",
        state=TaskState.READY_TO_TEST,
        pr_number=4,
        pr_url="http://gitea.invalid/acme/shop/pulls/4",
        head_sha="d" * 40,
    )
    task.branch_name = f"task/{task.pk}-checkout"
    task.save(update_fields=["branch_name"])
    return task


@pytest.fixture
def started(monkeypatch):
    """The deployments jobs started (their own tests are in tests/deployments)."""
    from deployments import jobs

    calls: list[tuple[str, dict]] = []
    for name in ("deploy_preview", "destroy_preview"):
        job = getattr(jobs, name)
        monkeypatch.setattr(job, "delay", lambda _n=name, **kw: calls.append((_n, kw)))
    return calls


def _send(project, body: bytes, *, event: str, delivery: str, capture):
    headers = delivery_headers(project, body, event=event, delivery=delivery)
    with capture(execute=True):
        return Client().post(
            f"{URL}?project={project.slug}", data=body, content_type="application/json", **headers
        )


def _state(task, started):
    return (
        list(WebhookDelivery.objects.values_list("delivery_id", "outcome")),
        list(TaskFeedback.objects.values_list("source", "author", "body")),
        list(TaskEvent.objects.filter(task=task).values_list("kind", "message")),
        list(started),
    )


def _review(task, content="Missing tests."):
    return {
        "action": "reviewed",
        "number": task.pr_number,
        "pull_request": {
            "number": task.pr_number,
            "state": "open",
            "html_url": task.pr_url,
            "head": {"ref": task.branch_name, "sha": "d" * 40},
            "base": {"ref": "main"},
        },
        "review": {"type": "pull_request_review_rejected", "content": content},
        "sender": {"id": 7, "login": "ana"},
        "repository": REPOSITORY,
    }


def _comment(task, comment_id=91, body="Rename the button."):
    return {
        "action": "created",
        "issue": {"number": task.pr_number, "pull_request": {"merged": False}},
        "comment": {"id": comment_id, "body": body, "user": {"login": "bo"}},
        "is_pull": True,
        "repository": REPOSITORY,
    }


def _push(task, after="e" * 40, before="d" * 40):
    return {
        "ref": f"refs/heads/{task.branch_name}",
        "before": before,
        "after": after,
        "repository": REPOSITORY,
    }


def _pr_synchronized(task, sha="f" * 40):
    return {
        "action": "synchronized",
        "number": task.pr_number,
        "pull_request": {
            "number": task.pr_number,
            "state": "open",
            "merged": False,
            "html_url": task.pr_url,
            "head": {"ref": task.branch_name, "sha": sha},
            "base": {"ref": "main"},
            "updated_at": "2026-12-03T10:00:00Z",
        },
        "repository": REPOSITORY,
    }


def _status(task):
    return {
        "id": 31,
        "sha": "d" * 40,
        "state": "success",
        "context": "ci/build",
        "repository": REPOSITORY,
    }


CASES = {
    "review": ("pull_request_rejected", _review),
    "comment": ("issue_comment", _comment),
    "push": ("push", _push),
    "pull_request": ("pull_request", _pr_synchronized),
    "status": ("status", _status),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_signed_event_replayed_under_a_new_delivery_id_changes_nothing(
    repo_project, task, started, django_capture_on_commit_callbacks, name
):
    event, make = CASES[name]
    body = json.dumps(make(task)).encode()
    first = _send(
        repo_project, body, event=event, delivery="d-1", capture=django_capture_on_commit_callbacks
    )
    assert first.status_code == 202
    after_first = _state(task, started)
    assert after_first[0] == [("d-1", "processed")]
    assert after_first[1] or after_first[2]  # the first copy had its effect

    replays = [
        _send(
            repo_project,
            body,
            event=event,
            delivery=f"replay-{n}",
            capture=django_capture_on_commit_callbacks,
        )
        for n in range(3)
    ]

    assert [r.status_code for r in replays] == [200, 200, 200]
    assert all(r.json() == {"status": "duplicate"} for r in replays)
    assert _state(task, started) == after_first


def test_a_review_replayed_under_its_other_event_name_is_the_same_review(
    repo_project, task, django_capture_on_commit_callbacks
):
    body = json.dumps(_review(task)).encode()
    cap = django_capture_on_commit_callbacks
    first = _send(repo_project, body, event="pull_request_rejected", delivery="a", capture=cap)
    assert first.status_code == 202
    again = _send(
        repo_project, body, event="pull_request_review_rejected", delivery="b", capture=cap
    )
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert TaskFeedback.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_distinct_events_are_still_each_applied(
    repo_project, task, started, django_capture_on_commit_callbacks
):
    """The identity is not too coarse: another comment, another review text, a push back to an
    earlier commit (same `after`, other `before`) each count."""
    cap = django_capture_on_commit_callbacks
    sends = [
        ("issue_comment", _comment(task, 91, "One.")),
        ("issue_comment", _comment(task, 92, "Two.")),
        ("pull_request_rejected", _review(task, "First.")),
        ("pull_request_rejected", _review(task, "Second.")),
        ("push", _push(task, after="e" * 40, before="d" * 40)),
        ("push", _push(task, after="d" * 40, before="e" * 40)),
        ("push", _push(task, after="e" * 40, before="d" * 40)),  # the first push, replayed
    ]
    codes = [
        _send(
            repo_project,
            json.dumps(data).encode(),
            event=event,
            delivery=f"x{n}",
            capture=cap,
        ).status_code
        for n, (event, data) in enumerate(sends)
    ]
    assert codes == [202, 202, 202, 202, 202, 202, 200]
    assert TaskFeedback.objects.count() == 4
    assert TaskEvent.objects.filter(task=task, kind="pushed").count() == 2
    assert [kw["commit_sha"] for _, kw in started] == ["e" * 40, "d" * 40]


def test_a_replay_with_a_forged_signature_is_still_refused_first(
    repo_project, task, django_capture_on_commit_callbacks
):
    body = json.dumps(_comment(task)).encode()
    headers = delivery_headers(repo_project, body, event="issue_comment", delivery="d-1")
    headers["HTTP_X_GITEA_SIGNATURE"] = "0" * 64
    answer = Client().post(
        f"{URL}?project={repo_project.slug}", data=body, content_type="application/json", **headers
    )
    assert answer.status_code == 403
    assert not WebhookDelivery.objects.exists() and not TaskFeedback.objects.exists()


@pytest.mark.mariadb  # SQLite's in-memory test database locks whole tables across threads
@pytest.mark.django_db(transaction=True)
def test_racing_replays_under_different_delivery_ids_are_recorded_once(repo_project, task, started):
    """Six copies of one signed comment, each with its own delivery id, at the same instant: the
    unique event key lets one through."""
    body = json.dumps(_comment(task)).encode()
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def send(n: int) -> None:
        headers = delivery_headers(repo_project, body, event="issue_comment", delivery=f"r{n}")
        barrier.wait()
        answer = Client().post(
            f"{URL}?project={repo_project.slug}",
            data=body,
            content_type="application/json",
            **headers,
        )
        codes.append(answer.status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(codes) == [200] * 5 + [202]
    assert WebhookDelivery.objects.count() == 1
