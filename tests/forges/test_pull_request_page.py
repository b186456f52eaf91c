"""The task page of a local-forge project shows its pull request (commits, files, diff, read
from a real bare repository) and takes a reviewer's comment or request for changes, which
becomes the agent's feedback through the same tasks services as a Gitea review."""

import pytest
from django.test import Client
from django.urls import reverse

from projects.forges import local_git
from projects.models import Membership, PullRequest, PullRequestComment
from tasks import local_review
from tasks import services as task_services
from tasks.models import Task, TaskEvent, TaskFeedback
from tasks.services import forge
from tasks.states import TaskState
from tests import factories
from tests.forges.conftest import commit_file, git, task_with_pushed_branch

pytestmark = pytest.mark.django_db
S = TaskState


@pytest.fixture(autouse=True)
def membership_decides(settings):
    settings.PROJECT_DEFAULT_ROLE = ""  # tests/conftest.py gives older tests a member's rights


def signed_in(project, role: str) -> Client:
    user = factories.make_user()
    Membership.objects.create(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, task: Task) -> str:
    response = client.get(reverse("board-task", args=[task.project.slug, task.pk]))
    assert response.status_code == 200
    return response.content.decode()


def review_url(task: Task) -> str:
    return reverse("board-pull-request-review", args=[task.project.slug, task.pk])


def with_pull_request(project, checkout, *, title="Greet", files=None, **fields) -> Task:
    task = task_with_pushed_branch(
        project, checkout, title=title, files=files or {"greet.py": "print('hi')\n"}, **fields
    )
    return forge.task_open_pull_request(task_id=task.pk, actor=factories.system())


def snapshot(task: Task) -> tuple:
    """Everything a review could change."""
    task.refresh_from_db()
    return (
        task.state,
        task.assigned_agent_id,
        TaskEvent.objects.filter(task=task).count(),
        list(TaskFeedback.objects.filter(task=task).values_list("pk", flat=True)),
        list(PullRequestComment.objects.values_list("pk", flat=True)),
    )


# --- the section ------------------------------------------------------------------------------


def test_the_task_page_shows_commits_files_and_the_diff_escaped(local_project, seeded):
    repo, checkout = seeded
    task = with_pull_request(
        local_project,
        checkout,
        files={"app.py": "print('hello')\nprint('<script>alert(1)</script>')\n"},
    )
    # A second commit on the same branch: a binary file.
    (checkout / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01\x02")
    git("add", "logo.png", cwd=checkout)
    git("commit", "--quiet", "-m", "Logo & <b>more</b>", cwd=checkout)
    git("push", "--quiet", "origin", task.branch_name, cwd=checkout)
    head = local_git.sha_of(repo, task.branch_name)

    html = page(signed_in(local_project, "viewer"), task)

    assert 'id="pull-request"' in html and "Pull request #1" in html
    assert f"<code>{task.branch_name}</code> → <code>main</code>" in html
    assert head[:10] in html
    # Commits oldest first, with short sha, subject (escaped) and author.
    assert html.index("Greet: app.py") < html.index("Logo &amp; &lt;b&gt;more&lt;/b&gt;")
    assert "— t</span>" in html
    # Files with their counts, the binary file as binary.
    assert '<td class="diff-add">+1</td><td class="diff-del">−0</td>' in html
    assert "<code>logo.png</code>" in html and '<td class="binary" colspan="2">binary</td>' in html
    # The diff, each line styled by what it is; repository text is never markup.
    assert '<span class="dl dl-file">diff --git a/app.py b/app.py</span>' in html
    assert '<span class="dl dl-hunk">@@ -1 +1,2 @@</span>' in html
    assert '<span class="dl dl-ctx"> print(&#x27;hello&#x27;)</span>' in html
    added = "+print(&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;)"
    assert f'<span class="dl dl-add">{added}</span>' in html
    assert '<span class="dl dl-note">Binary files /dev/null and b/logo.png differ</span>' in html
    assert "<script>alert(1)" not in html
    # The header's PR link stays on this page.
    assert '<a href="#pull-request">Pull request #1</a>' in html


def test_renames_and_removed_lines_are_read_as_git_says(local_project, seeded):
    repo, checkout = seeded
    base = local_git.sha_of(repo, "main")
    git("mv", "app.py", "main.py", cwd=checkout)
    commit_file(checkout, "notes.txt", "-- not a header\n", "rename and notes")
    git("push", "--quiet", "origin", "HEAD:refs/heads/topic", cwd=checkout)
    commit_file(checkout, "notes.txt", "kept\n", "rewrite notes")
    git("push", "--quiet", "origin", "HEAD:refs/heads/topic2", cwd=checkout)
    topic, topic2 = local_git.sha_of(repo, "topic"), local_git.sha_of(repo, "topic2")

    stats = local_git.numstat(repo, base=base, head=topic)
    lines = local_git.diff(repo, base=topic, head=topic2).lines

    assert [(f.old_path, f.path, f.added, f.removed) for f in stats] == [
        ("app.py", "main.py", 0, 0),
        ("", "notes.txt", 1, 0),
    ]
    # "--- not a header" removed inside a hunk is a removed line, not a file header.
    assert [(line.kind, line.text) for line in lines][-2:] == [
        ("del", "--- not a header"),
        ("add", "+kept"),
    ]
    assert [c.subject for c in local_git.log(repo, base=base, head=topic2)] == [
        "rename and notes",
        "rewrite notes",
    ]


def test_a_merged_pull_request_keeps_the_diff_it_was_reviewed_with(local_project, seeded):
    repo, checkout = seeded
    task = with_pull_request(local_project, checkout, files={"one.txt": "one\n"})
    forge.task_merge_pull_request(task_id=task.pk, actor=factories.system())
    # main moves on with another task's work, and the branch is deleted.
    other = with_pull_request(local_project, checkout, title="Other", files={"two.txt": "2\n"})
    forge.task_merge_pull_request(task_id=other.pk, actor=factories.system())
    git("--git-dir", str(repo), "update-ref", "-d", f"refs/heads/{task.branch_name}")

    changes = local_review.pull_request_changes(PullRequest.objects.get(number=1))

    assert changes.unavailable == ""
    assert [f.path for f in changes.files] == ["one.txt"]
    assert [c.subject for c in changes.commits] == ["Greet: one.txt"]
    assert [(line.kind, line.text) for line in changes.diff.lines][-1] == ("add", "+one")
    assert "Merged" in page(signed_in(local_project, "viewer"), task)


def test_a_huge_diff_is_cut_with_a_note(local_project, seeded):
    _, checkout = seeded
    lines = "".join(f"line {n}\n" for n in range(local_git.DIFF_MAX_LINES + 500))
    task = with_pull_request(local_project, checkout, files={"big.txt": lines})

    html = page(signed_in(local_project, "viewer"), task)

    assert html.count('class="dl ') == local_git.DIFF_MAX_LINES
    assert "The diff is longer than this page shows (5000 lines shown)" in html
    # The file list still counts the whole change.
    assert f'<td class="diff-add">+{local_git.DIFF_MAX_LINES + 500}</td>' in html


def test_long_lists_keep_the_newest_commits_and_say_so(local_project, seeded, monkeypatch):
    monkeypatch.setattr(local_git, "LOG_MAX_COMMITS", 2)
    monkeypatch.setattr(local_git, "NUMSTAT_MAX_FILES", 2)
    task = with_pull_request(
        local_project, seeded[1], files={"a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n"}
    )

    changes = local_review.pull_request_changes(PullRequest.objects.get())
    html = page(signed_in(local_project, "viewer"), task)

    assert [c.subject for c in changes.commits] == ["Greet: b.txt", "Greet: c.txt"]
    assert [f.path for f in changes.files] == ["a.txt", "b.txt"]
    assert changes.commits_truncated and changes.files_truncated
    assert "Commits (2+)" in html and "Only the newest 2 commits are listed." in html
    assert "Files changed (2+)" in html


def test_the_diff_reader_stops_at_its_byte_limit(local_project, seeded):
    repo, checkout = seeded
    base = local_git.sha_of(repo, "main")
    commit_file(checkout, "big.txt", "x" * 50_000 + "\n")
    git("push", "--quiet", "origin", "HEAD:refs/heads/big", cwd=checkout)

    cut = local_git.diff(repo, base=base, head=local_git.sha_of(repo, "big"), max_bytes=300)
    whole = local_git.diff(repo, base=base, head=local_git.sha_of(repo, "big"))

    assert cut.truncated and cut.total_bytes == 301
    assert sum(len(line.text) + 1 for line in cut.lines) <= 300
    assert not whole.truncated and whole.lines[-1].text == "+" + "x" * 50_000


def test_commits_the_repository_lost_are_said_so(local_project, seeded):
    repo, checkout = seeded
    task = with_pull_request(local_project, checkout)
    PullRequest.objects.update(state="closed", head_sha="f" * 40)
    git("--git-dir", str(repo), "update-ref", "-d", f"refs/heads/{task.branch_name}")

    html = page(signed_in(local_project, "viewer"), task)

    assert "The commits of this pull request are no longer in the repository." in html


def test_a_gitea_project_keeps_its_link_and_has_no_local_section(db):
    project = factories.make_project()  # Gitea
    task = factories.make_task(
        project=project, pr_number=4, pr_url="https://git.example/acme/shop/pulls/4"
    )

    html = page(signed_in(project, "member"), task)

    assert 'href="https://git.example/acme/shop/pulls/4"' in html
    assert 'id="pull-request"' not in html and 'id="pr-review"' not in html


def test_a_viewer_sees_the_diff_but_no_review_form(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    assert 'id="pr-review"' not in page(signed_in(local_project, "viewer"), task)
    assert 'id="pr-review"' in page(signed_in(local_project, "member"), task)


def test_the_pull_requests_own_address_opens_its_task_page(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    client = signed_in(local_project, "viewer")

    response = client.get(f"/projects/{local_project.slug}/pulls/1/")

    assert response.status_code == 302
    assert response["Location"] == f"/projects/{local_project.slug}/tasks/{task.pk}/#pull-request"
    assert client.get(f"/projects/{local_project.slug}/pulls/9/").status_code == 404


# --- the review form --------------------------------------------------------------------------


def test_a_comment_is_kept_on_the_pr_and_becomes_feedback(local_project, seeded):
    agent, _ = factories.make_agent()
    task = with_pull_request(local_project, seeded[1], assigned_agent=agent)
    client = signed_in(local_project, "member")

    response = client.post(review_url(task), {"body": "Why <b>print</b>?", "verdict": "comment"})

    assert response.status_code == 302 and response["Location"].endswith("#pull-request")
    comment = PullRequestComment.objects.get()
    assert (comment.kind, comment.body) == ("comment", "Why <b>print</b>?")
    feedback = TaskFeedback.objects.get(task=task)
    assert (feedback.source, feedback.body, feedback.seen_at) == ("person", comment.body, None)
    assert feedback.author == comment.author
    assert TaskEvent.objects.filter(task=task, kind="feedback").count() == 1
    task.refresh_from_db()
    assert task.state == S.IN_PROGRESS
    html = page(client, task)
    assert "Why &lt;b&gt;print&lt;/b&gt;?" in html and "Sent: the agent reads it" in html
    # What the agent's get_feedback returns (mcpbridge/tools.py: feedback_take_unseen).
    seen = task_services.feedback_take_unseen(task_id=task.pk, agent=agent)
    assert [f.body for f in seen] == ["Why <b>print</b>?"]


def test_request_changes_sends_a_ready_task_back_to_its_agent(local_project, seeded):
    agent, _ = factories.make_agent()
    task = with_pull_request(local_project, seeded[1], assigned_agent=agent)
    Task.objects.filter(pk=task.pk).update(state=S.READY_TO_TEST)
    client = signed_in(local_project, "member")

    client.post(review_url(task), {"body": "Greet by name.", "verdict": "changes_requested"})

    task.refresh_from_db()
    assert (task.state, task.assigned_agent_id) == (S.IN_PROGRESS, agent.pk)
    assert PullRequestComment.objects.get().kind == "changes_requested"
    # Worded as a Gitea "changes requested" review is (gitea_deliveries._on_review).
    assert TaskFeedback.objects.get(task=task).body == "[changes requested] Greet by name."
    move = TaskEvent.objects.filter(task=task, to_state=S.IN_PROGRESS).latest("pk")
    assert move.from_state == S.READY_TO_TEST and move.actor_user is not None


def test_request_changes_on_a_task_in_progress_is_feedback_and_the_task_stays(
    local_project, seeded
):
    agent, _ = factories.make_agent()
    task = with_pull_request(local_project, seeded[1], assigned_agent=agent)
    client = signed_in(local_project, "member")

    client.post(review_url(task), {"body": "Also a test.", "verdict": "changes_requested"})

    task.refresh_from_db()
    assert task.state == S.IN_PROGRESS
    assert TaskFeedback.objects.get(task=task).body == "[changes requested] Also a test."


# --- bad input: a clear error and nothing changed ---------------------------------------------


def refused(task: Task, data: dict, *, role: str = "member", status: int = 200) -> str:
    """Post the review form; assert the answer's status and that nothing changed; the page."""
    before = snapshot(task)
    response = signed_in(task.project, role).post(review_url(task), data, follow=True)
    assert response.status_code == status
    assert snapshot(task) == before
    return response.content.decode()


def test_an_empty_comment_is_refused(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    for body in ("", "   "):
        html = refused(task, {"body": body, "verdict": "changes_requested"})
        assert "Say something: the comment text is required." in html


def test_an_unknown_verdict_is_refused(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    html = refused(task, {"body": "ok", "verdict": "approve"})
    assert "Choose Comment or Request changes." in html


def test_a_task_without_a_pull_request_is_refused(local_project, seeded):
    task = factories.make_task(project=local_project, state=S.IN_PROGRESS)
    html = refused(task, {"body": "Looks good", "verdict": "comment"})
    assert f"Task {task.pk} has no pull request yet" in html
    assert 'id="pull-request"' not in html


def test_a_gitea_task_is_refused_on_the_local_form(db):
    project = factories.make_project()
    task = factories.make_task(project=project, pr_number=4, pr_url="https://git.example/p/4")
    html = refused(task, {"body": "hi", "verdict": "comment"})
    assert "pull request lives on Gitea: review it there" in html


def test_requesting_changes_on_a_merged_pull_request_is_refused(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    forge.task_merge_pull_request(task_id=task.pk, actor=factories.system())
    html = refused(task, {"body": "More", "verdict": "changes_requested"})
    assert "Pull request #1 is merged: changes can be requested only on an open" in html


def test_a_viewer_is_refused_with_the_role_named(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    data = {"body": "Let me in", "verdict": "changes_requested"}
    html = refused(task, data, role="viewer", status=403)
    assert "This needs the &#x27;member&#x27; role" in html


def test_a_post_without_the_csrf_token_is_refused(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    user = factories.make_user()
    Membership.objects.create(project=local_project, user=user, role="member")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    before = snapshot(task)

    response = client.post(review_url(task), {"body": "Forged", "verdict": "comment"})

    assert response.status_code == 403
    assert "CSRF verification failed" in response.content.decode()
    assert snapshot(task) == before


def test_another_projects_task_is_not_found(local_project, seeded):
    task = with_pull_request(local_project, seeded[1])
    elsewhere = factories.make_project(forge="local")
    before = snapshot(task)
    url = reverse("board-pull-request-review", args=[elsewhere.slug, task.pk])
    response = signed_in(elsewhere, "admin").post(url, {"body": "x", "verdict": "comment"})
    assert response.status_code == 404
    assert snapshot(task) == before


def test_the_service_asks_the_role_itself(local_project, seeded):
    """A surface that forgot to ask is still refused: the service asks the same question."""
    from aiworker import errors
    from aiworker.actors import Actor

    task = with_pull_request(local_project, seeded[1])
    viewer = factories.make_user()
    Membership.objects.create(project=local_project, user=viewer, role="viewer")
    before = snapshot(task)
    with pytest.raises(errors.PermissionDenied, match="needs the 'member' role"):
        local_review.pull_request_review_add(
            task_id=task.pk, actor=Actor.of_user(viewer), body="x", verdict="comment"
        )
    assert snapshot(task) == before
