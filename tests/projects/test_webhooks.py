"""POST /api/webhooks/gitea/: signature before parsing, exactly-once deliveries, one handler per
event. Payloads are shaped like Gitea's (only the fields the handlers read)."""

import json
import logging
import random
import threading

import pytest
from django.test import Client
from rest_framework.throttling import ScopedRateThrottle

from deployments import jobs as deployment_jobs
from projects.models import WebhookDelivery
from tasks.models import Task, TaskEvent, TaskFeedback
from tasks.states import TaskState
from tests import factories
from tests.projects.conftest import OWNER, REPO, delivery_headers, sign

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
    )
    task.branch_name = f"task/{task.pk}-checkout"
    task.save(update_fields=["branch_name"])
    return task


@pytest.fixture
def started(monkeypatch):
    """Records the deployments jobs started (the deployments app has its own tests)."""
    calls: list[tuple[str, dict]] = []
    for name in ("deploy_preview", "destroy_preview"):
        job = getattr(deployment_jobs, name)
        monkeypatch.setattr(job, "delay", lambda _n=name, **kw: calls.append((_n, kw)))
    return calls


def post(client, project, data, *, event="push", delivery="d-1", body=None, headers=None, capture):
    raw = body if body is not None else json.dumps(data).encode()
    hdrs = (
        headers
        if headers is not None
        else delivery_headers(project, raw, event=event, delivery=delivery)
    )
    with capture(execute=True):
        return client.post(
            f"{URL}?project={project.slug}", data=raw, content_type="application/json", **hdrs
        )


def push(task, sha="a" * 40):
    return {"ref": f"refs/heads/{task.branch_name}", "after": sha, "repository": REPOSITORY}


def nothing_recorded():
    return not WebhookDelivery.objects.exists() and not TaskEvent.objects.exists()


def test_signed_push_is_processed_once(
    client, repo_project, task, started, django_capture_on_commit_callbacks
):
    response = post(client, repo_project, push(task), capture=django_capture_on_commit_callbacks)

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "delivery": "d-1"}
    task.refresh_from_db()
    assert task.head_sha == "a" * 40
    assert TaskEvent.objects.filter(task=task, kind="pushed").count() == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.outcome, delivery.event, delivery.project) == (
        "processed",
        "push",
        repo_project,
    )
    assert started == [("deploy_preview", {"task_id": task.pk, "commit_sha": "a" * 40})]


def test_the_same_delivery_twice_has_one_effect(
    client, repo_project, task, started, django_capture_on_commit_callbacks
):
    first = post(client, repo_project, push(task), capture=django_capture_on_commit_callbacks)
    second = post(client, repo_project, push(task), capture=django_capture_on_commit_callbacks)

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {"status": "duplicate"}
    assert WebhookDelivery.objects.count() == 1
    assert TaskEvent.objects.filter(kind="pushed").count() == 1
    assert len(started) == 1


@pytest.mark.parametrize(
    ("signature", "status"),
    [(None, 401), ("", 401), ("0" * 64, 403), ("not-hex", 403)],
)
def test_missing_or_wrong_signature_records_nothing_but_a_log_line(
    client, repo_project, task, caplog, signature, status, django_capture_on_commit_callbacks
):
    raw = json.dumps(push(task)).encode()
    headers = {"HTTP_X_GITEA_EVENT": "push", "HTTP_X_GITEA_DELIVERY": "d-1"}
    if signature is not None:
        headers["HTTP_X_GITEA_SIGNATURE"] = signature
    with caplog.at_level(logging.WARNING, logger="tasks.gitea_webhooks"):
        response = post(
            client,
            repo_project,
            None,
            body=raw,
            headers=headers,
            capture=django_capture_on_commit_callbacks,
        )

    assert response.status_code == status
    assert response.json()["code"] == "bad_signature"
    assert nothing_recorded()
    assert Task.objects.get(pk=task.pk).head_sha == ""
    assert [r.message for r in caplog.records if "refused" in r.message]
    assert repo_project.webhook_secret not in caplog.text


def test_signature_of_another_project_is_refused(
    client, repo_project, task, django_capture_on_commit_callbacks
):
    other = factories.make_project()
    raw = json.dumps(push(task)).encode()
    headers = delivery_headers(other, raw, event="push", delivery="d-1")
    response = post(
        client,
        repo_project,
        None,
        body=raw,
        headers=headers,
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 403
    assert nothing_recorded()


@pytest.mark.parametrize(
    ("body", "event", "status", "detail"),
    [
        (b"{not json", "push", 400, "not valid JSON"),
        (b"[1, 2]", "push", 400, "JSON object"),
        (json.dumps({"repository": REPOSITORY}).encode(), "wiki", 400, "Unknown event 'wiki'"),
        (
            json.dumps({"repository": {"full_name": "evil/other"}}).encode(),
            "push",
            400,
            "Unknown repository 'evil/other'",
        ),
    ],
)
def test_bad_deliveries_answer_a_clear_4xx_and_record_nothing(
    client, repo_project, task, body, event, status, detail, django_capture_on_commit_callbacks
):
    response = post(
        client,
        repo_project,
        None,
        body=body,
        event=event,
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert nothing_recorded()


def test_unknown_or_missing_project_is_a_clear_4xx(client, repo_project, task):
    raw = json.dumps(push(task)).encode()
    headers = delivery_headers(repo_project, raw, event="push", delivery="d-1")
    unknown = client.post(
        f"{URL}?project=nope", data=raw, content_type="application/json", **headers
    )
    missing = client.post(URL, data=raw, content_type="application/json", **headers)
    assert unknown.status_code == 404 and "Unknown project 'nope'" in unknown.json()["detail"]
    assert missing.status_code == 400 and "?project=" in missing.json()["detail"]
    assert nothing_recorded()


def test_missing_delivery_id_is_refused(client, repo_project, task):
    raw = json.dumps(push(task)).encode()
    headers = {
        "HTTP_X_GITEA_EVENT": "push",
        "HTTP_X_GITEA_SIGNATURE": sign(repo_project.webhook_secret, raw),
    }
    response = client.post(
        f"{URL}?project={repo_project.slug}", data=raw, content_type="application/json", **headers
    )
    assert response.status_code == 400
    assert nothing_recorded()


def _pr(task, action, *, merged=False, state="open", sha="b" * 40):
    return {
        "action": action,
        "number": task.pr_number,
        "pull_request": {
            "number": task.pr_number,
            "state": state,
            "merged": merged,
            "html_url": task.pr_url,
            "head": {"ref": task.branch_name, "sha": sha},
            "base": {"ref": "main"},
        },
        "repository": REPOSITORY,
    }


def test_pull_request_lifecycle(
    client, repo_project, task, started, django_capture_on_commit_callbacks
):
    cap = django_capture_on_commit_callbacks
    Task.objects.filter(pk=task.pk).update(pr_number=None, pr_url="")
    task.refresh_from_db()
    task.pr_number, task.pr_url = 4, "http://gitea.invalid/acme/shop/pulls/4"
    assert (
        post(
            client,
            repo_project,
            _pr(task, "opened"),
            event="pull_request",
            delivery="p1",
            capture=cap,
        ).status_code
        == 202
    )
    assert (
        post(
            client,
            repo_project,
            _pr(task, "synchronized", sha="c" * 40),
            event="pull_request",
            delivery="p2",
            capture=cap,
        ).status_code
        == 202
    )
    closed = _pr(task, "closed", merged=True, state="closed", sha="c" * 40)
    assert (
        post(
            client, repo_project, closed, event="pull_request", delivery="p3", capture=cap
        ).status_code
        == 202
    )

    task.refresh_from_db()
    assert (task.pr_number, task.pr_url, task.head_sha) == (
        4,
        "http://gitea.invalid/acme/shop/pulls/4",
        "c" * 40,
    )
    kinds = list(TaskEvent.objects.filter(task=task).values_list("kind", flat=True))
    assert kinds == ["pr_opened", "pr_updated", "pr_merged"]
    assert started == [("destroy_preview", {"task_id": task.pk})]
    assert set(WebhookDelivery.objects.values_list("outcome", flat=True)) == {"processed"}


def test_review_and_pr_comment_become_feedback_for_the_agent(
    client, repo_project, task, django_capture_on_commit_callbacks
):
    cap = django_capture_on_commit_callbacks
    review = {
        **_pr(task, "reviewed"),
        "review": {"type": "pull_request_review_rejected", "content": "Missing tests."},
        "sender": {"login": "ana"},
    }
    comment = {
        "action": "created",
        "issue": {"number": task.pr_number, "pull_request": {"merged": False}},
        "comment": {"id": 91, "body": "Rename the button.", "user": {"login": "bo"}},
        "is_pull": True,
        "repository": REPOSITORY,
    }
    on_issue = {
        **comment,
        "issue": {"number": 99},
        "is_pull": False,
        "comment": {"id": 92, "body": "x"},
    }
    post(client, repo_project, review, event="pull_request_rejected", delivery="r1", capture=cap)
    post(client, repo_project, comment, event="issue_comment", delivery="c1", capture=cap)
    post(client, repo_project, on_issue, event="issue_comment", delivery="c2", capture=cap)

    feedback = list(TaskFeedback.objects.filter(task=task).values_list("source", "author", "body"))
    assert feedback == [
        ("gitea_review", "ana", "[changes requested] Missing tests."),
        ("gitea_comment", "bo", "Rename the button."),
    ]
    outcomes = dict(WebhookDelivery.objects.values_list("delivery_id", "outcome"))
    assert outcomes == {"r1": "processed", "c1": "processed", "c2": "ignored"}


def test_successful_status_for_the_head_starts_the_preview(
    client, repo_project, task, started, django_capture_on_commit_callbacks
):
    cap = django_capture_on_commit_callbacks
    Task.objects.filter(pk=task.pk).update(head_sha="d" * 40)
    status = {"sha": "d" * 40, "state": "success", "context": "ci/build", "repository": REPOSITORY}
    post(
        client,
        repo_project,
        {**status, "state": "pending"},
        event="status",
        delivery="s1",
        capture=cap,
    )
    post(client, repo_project, status, event="status", delivery="s2", capture=cap)
    assert started == [("deploy_preview", {"task_id": task.pk, "commit_sha": "d" * 40})]
    assert TaskEvent.objects.filter(task=task, kind="commit_status").count() == 1


def test_push_to_a_branch_of_no_task_is_ignored(
    client, repo_project, task, started, django_capture_on_commit_callbacks
):
    data = {"ref": "refs/heads/main", "after": "e" * 40, "repository": REPOSITORY}
    assert (
        post(client, repo_project, data, capture=django_capture_on_commit_callbacks).status_code
        == 202
    )
    assert WebhookDelivery.objects.get().outcome == "ignored"
    assert started == [] and not TaskEvent.objects.exists()


def test_webhook_throttle_scope_applies(
    client, repo_project, task, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"webhook": "3/minute"})
    codes = [
        post(
            client,
            repo_project,
            push(task, sha=f"{i + 1:040x}"),  # distinct pushes: one event replayed is a duplicate
            delivery=f"t{i}",
            capture=django_capture_on_commit_callbacks,
        ).status_code
        for i in range(4)
    ]
    assert codes == [202, 202, 202, 429]


def test_a_burst_of_1000_with_10_percent_duplicates_has_exactly_once_effects(
    client, repo_project, task, started, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"webhook": "100000/minute"})
    rng = random.Random(5)
    unique = [f"burst-{i}" for i in range(900)]
    order = unique + [rng.choice(unique) for _ in range(100)]
    rng.shuffle(order)
    bodies = {d: json.dumps(push(task, sha=f"{i + 1:040x}")).encode() for i, d in enumerate(unique)}

    codes = [
        post(
            client,
            repo_project,
            None,
            body=bodies[d],
            delivery=d,
            capture=django_capture_on_commit_callbacks,
        ).status_code
        for d in order
    ]

    assert codes.count(202) == 900 and codes.count(200) == 100
    assert WebhookDelivery.objects.count() == 900
    assert set(WebhookDelivery.objects.values_list("outcome", flat=True)) == {"processed"}
    assert TaskEvent.objects.filter(task=task, kind="pushed").count() == 900
    assert len(started) == 900


@pytest.mark.mariadb  # SQLite's in-memory test database locks whole tables across threads
@pytest.mark.django_db(transaction=True)
def test_racing_copies_of_one_delivery_are_recorded_once(repo_project, task, started):
    """Six copies of one delivery at the same instant: the unique key lets one through."""
    raw = json.dumps(push(task)).encode()
    headers = delivery_headers(repo_project, raw, event="push", delivery="race-1")
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def send() -> None:
        barrier.wait()
        response = Client().post(
            f"{URL}?project={repo_project.slug}",
            data=raw,
            content_type="application/json",
            **headers,
        )
        codes.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(codes) == [200] * 5 + [202]
    assert WebhookDelivery.objects.count() == 1
    assert TaskEvent.objects.filter(kind="pushed").count() == 1
