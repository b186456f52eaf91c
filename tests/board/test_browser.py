"""The board in a real browser: Playwright's sync API driving Debian's Chromium against daphne.

One server and one browser serve the module; each test opens fresh browser contexts (one per
person) signed in with a session cookie made by Django's test client.
"""

import os
import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocketRoute, expect

from projects.models import Membership
from tasks import services
from tasks.models import Task
from tasks.states import TaskState
from tests import factories
from tests.board.live_server import start_daphne
from tests.browser import launched_chromium, signed_in_context

S = TaskState
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Generous waits for "eventually"; the one-second target is measured in tests/bench/bench_board.py.
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def live_url():
    url, stop = start_daphne()
    yield url
    stop()


@pytest.fixture(scope="module")
def browser() -> Browser:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def open_context(browser, live_url):
    contexts: list[BrowserContext] = []

    def make(user=None) -> BrowserContext:
        if user is None:
            context = browser.new_context(
                base_url=live_url, viewport={"width": 1600, "height": 900}
            )
            context.set_default_timeout(WAIT_MS)
        else:
            context = signed_in_context(
                browser, live_url, user, viewport=(1600, 900), timeout_ms=WAIT_MS
            )
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def open_board(context: BrowserContext, slug: str) -> Page:
    page = context.new_page()
    page.goto(f"/projects/{slug}/board/")
    expect(page.locator("#board-root")).to_have_attribute("data-live", "open")
    return page


def off_the_loop(service: Callable[..., object], **kwargs: object) -> None:
    """Call a service from a thread of its own: Playwright's sync API keeps an event loop on
    the test's thread, where the live broadcast's async_to_sync refuses to run."""
    import threading

    from django.db import connection

    failed: list[BaseException] = []

    def call() -> None:
        try:
            service(**kwargs)
        except BaseException as exc:  # re-raised on the test's thread
            failed.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def card_in(page: Page, state: str, task: Task):
    return page.locator(f'.cards[data-state="{state}"] #task-{task.pk}')


def test_drag_and_drop_shows_on_a_second_board(open_context, project, approver, artifacts_dir):
    project.wip_limits = {"in_progress": 3}
    project.save()
    agent, _ = factories.make_agent(name="claude-7")
    mover = factories.make_task(project=project, title="Drag me", priority=2)
    keyed = factories.make_task(project=project, title="Move me by keyboard")
    factories.make_task(
        project=project,
        title="Agent at work",
        state=S.IN_PROGRESS,
        assigned_agent=agent,
        pr_url="https://git.example/acme/shop/pulls/4",
        pr_number=4,
    )
    factories.make_task(
        project=project,
        title="Ready",
        state=S.READY_TO_TEST,
        preview_url="https://task-9.preview.example",
    )
    approved = factories.make_task(project=project, title="Approved one", state=S.APPROVED)
    factories.make_agent(name="claude-8")  # free to start a task
    factories.make_agent(name="claude-9")
    other = factories.make_user()
    first = open_board(open_context(approver), project.slug)
    second = open_board(open_context(other), project.slug)

    first.locator(f"#task-{mover.pk}").drag_to(
        first.locator('section.column[data-state="in_progress"]')
    )
    # Starting a task by hand names its agent: the board asks. Cancel moves nothing.
    expect(first.locator("#start-dialog")).to_be_visible()
    first.locator("#start-dialog button[value=cancel]").click()
    expect(card_in(first, "backlog", mover)).to_be_visible()
    first.locator(f"#task-{mover.pk}").drag_to(
        first.locator('section.column[data-state="in_progress"]')
    )
    first.select_option("#start-agent", label="claude-8")
    first.click("#start-confirm")
    expect(card_in(second, "in_progress", mover)).to_be_visible()
    expect(second.locator('section.column[data-state="in_progress"] .count')).to_have_text("2")
    mover.refresh_from_db()
    assert mover.state == S.IN_PROGRESS

    # An illegal drop snaps back and shows the service's message; nothing changes.
    first.locator(f"#task-{mover.pk}").drag_to(
        first.locator('section.column[data-state="production"]')
    )
    expect(first.locator("#board-message")).to_contain_text(
        "cannot move from 'in_progress' to 'production'"
    )
    expect(card_in(first, "in_progress", mover)).to_be_visible()
    mover.refresh_from_db()
    assert mover.state == S.IN_PROGRESS and mover.assigned_agent.name == "claude-8"

    # A plain move to staging is refused for everyone and names the release action.
    first.locator(f"#task-{approved.pk}").drag_to(
        first.locator('section.column[data-state="staging"]')
    )
    expect(first.locator("#board-message")).to_contain_text("use Merge to staging")
    expect(card_in(first, "approved", approved)).to_be_visible()
    approved.refresh_from_db()
    assert approved.state == S.APPROVED

    # The keyboard "move to" menu does the same as a drop.
    second.locator(f"#task-{keyed.pk} summary").focus()
    second.keyboard.press("Enter")
    second.locator(f'#task-{keyed.pk} button.move-to[data-to="in_progress"]').focus()
    second.keyboard.press("Enter")
    second.select_option("#start-agent", label="claude-9")
    second.click("#start-confirm")
    expect(card_in(first, "in_progress", keyed)).to_be_visible()

    # Filters hide cards without a reload.
    first.fill("#filter-text", "keyboard")
    expect(first.locator(f"#task-{mover.pk}")).to_be_hidden()
    expect(first.locator(f"#task-{keyed.pk}")).to_be_visible()
    first.fill("#filter-text", "")
    first.select_option("#filter-agent", "claude-7")
    expect(first.locator(f"#task-{keyed.pk}")).to_be_hidden()
    first.select_option("#filter-agent", "")

    # Over the WIP limit is flagged (a fourth task written straight to the database, as an
    # operator's fix-up would, then seen after a reload).
    factories.make_task(project=project, title="Fourth", state=S.IN_PROGRESS)
    first.reload()
    expect(first.locator('section.column[data-state="in_progress"]')).to_have_class(
        re.compile("over-limit")
    )
    first.screenshot(path=os.path.join(artifacts_dir, "board.png"), full_page=True)


def test_answering_a_question_moves_the_card_on_both_boards(
    open_context, project, user, artifacts_dir
):
    agent, _ = factories.make_agent(name="codex-2")
    task = factories.make_task(
        project=project, title="Needs a colour", description="Paint the header."
    )
    services.task_claim_next(agent=agent, project=project)
    services.task_log_progress(task_id=task.pk, actor=factories.system(), message="Cloned repo")
    question = services.question_ask(
        task_id=task.pk, agent=agent, question="Which colour?", options=["blue", "green"]
    )
    other = factories.make_user()
    mine = open_context(user)
    board = open_board(mine, project.slug)
    theirs = open_board(open_context(other), project.slug)
    expect(card_in(board, "needs_input", task).locator(".needs-input")).to_be_visible()

    detail = mine.new_page()
    detail.goto(f"/projects/{project.slug}/tasks/{task.pk}/")
    expect(detail.locator(f"#question-{question.pk}")).to_contain_text("Which colour?")
    detail.screenshot(path=os.path.join(artifacts_dir, "task-detail.png"), full_page=True)
    detail.fill(f"#answer-{question.pk}", "Blue, please")
    detail.click(f"#question-{question.pk} button[type=submit]")
    expect(detail.locator(".messages")).to_contain_text("Answer sent")

    for page in (board, theirs):
        expect(card_in(page, "in_progress", task)).to_be_visible()
        expect(card_in(page, "in_progress", task).locator(".needs-input")).to_have_count(0)
    task.refresh_from_db()
    assert task.state == S.IN_PROGRESS


def test_rest_api_and_admin_changes_show_on_an_open_board(open_context, project, user):
    admin_user = factories.make_user(is_staff=True, is_superuser=True)
    by_api = factories.make_task(project=project, title="Moved by the API")
    by_admin = factories.make_task(project=project, title="Moved in the admin")
    agent, _ = factories.make_agent()
    board = open_board(open_context(user), project.slug)

    operator = open_context(admin_user)
    page = operator.new_page()
    page.goto("/")  # sets the CSRF cookie
    token = next(c["value"] for c in operator.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"/api/tasks/{by_api.pk}/transition/",
        data={"to_state": "in_progress", "agent": agent.pk},
        headers={"X-CSRFToken": token},
    )
    assert response.status == 200, response.text()
    expect(card_in(board, "in_progress", by_api)).to_be_visible()

    page.goto("/admin/tasks/task/")
    page.check(f'input[name="_selected_action"][value="{by_admin.pk}"]')
    page.select_option('select[name="action"]', "move_to_cancelled")
    page.click('button[name="index"]')
    expect(page.locator(".messagelist")).to_contain_text(f"#{by_admin.pk}")
    expect(card_in(board, "cancelled", by_admin)).to_be_visible()
    expect(board.locator('section.column[data-state="cancelled"] .count')).to_have_text("1")


def test_login_page_and_anonymous_websocket_is_refused(open_context, project, user, artifacts_dir):
    for i, state in enumerate([S.IN_PROGRESS, S.CANCELLED, S.BACKLOG]):
        made = services.task_create(project=project, title=f"Flow {i}", actor=factories.system())
        if state != S.BACKLOG:
            services.task_transition(
                task_id=made.pk,
                to_state=state,
                actor=factories.system(),
                agent_id=factories.make_agent()[0].pk if state == S.IN_PROGRESS else None,
            )
    context = open_context()
    page = context.new_page()
    page.goto(f"/projects/{project.slug}/board/")
    assert "/login/" in page.url
    outcome = page.evaluate(
        """url => new Promise(resolve => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("open");
            ws.onclose = event => resolve("closed " + event.code);
        })""",
        page.url.split("/login/")[0].replace("http", "ws") + f"/ws/projects/{project.slug}/board/",
    )
    assert outcome.startswith("closed")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    expect(page.locator("#board-root")).to_have_attribute("data-live", "open")
    page.goto("/")
    expect(page.locator(f"#project-{project.slug} svg")).to_be_visible()
    page.screenshot(path=os.path.join(artifacts_dir, "projects.png"), full_page=True)


def test_show_more_pages_a_big_column_in_and_its_cards_stay_live(open_context, project):
    """A column with more than a page: "show more" (from the keyboard) loads the next cards
    after the last one shown; a card it loaded is redrawn by live events like any other."""
    from tasks.board_selectors import PAGE_SIZE

    made = Task.objects.bulk_create(
        Task(project=project, title=f"bulk {i}", position=i) for i in range(PAGE_SIZE + 5)
    )
    page = open_board(open_context(factories.make_user()), project.slug)
    column = page.locator('section.column[data-state="backlog"]')
    expect(column.locator(".cards > .card")).to_have_count(PAGE_SIZE)
    expect(column.locator(".show-more .more-count")).to_have_text("5")
    expect(card_in(page, "backlog", made[-1])).to_have_count(0)
    column.locator(".show-more").focus()
    page.keyboard.press("Enter")
    expect(column.locator(".cards > .card")).to_have_count(PAGE_SIZE + 5)
    expect(column.locator(".show-more")).to_be_hidden()
    expect(column.locator(".count")).to_have_text(str(PAGE_SIZE + 5))
    ids = column.locator(".cards > .card").evaluate_all("cards => cards.map(c => c.id)")
    assert ids == [f"task-{t.pk}" for t in made]

    # Live events reach the cards "show more" loaded: an edit redraws one in its place, a move
    # takes another to its new column, and the counts follow.
    off_the_loop(
        services.task_update, task_id=made[-1].pk, actor=factories.system(), title="Renamed live"
    )
    expect(card_in(page, "backlog", made[-1]).locator(".card-title")).to_contain_text(
        "Renamed live"
    )
    off_the_loop(
        services.task_transition,
        task_id=made[-2].pk,
        to_state=S.IN_PROGRESS,
        actor=factories.system(),
        agent_id=factories.make_agent()[0].pk,
    )
    expect(card_in(page, "in_progress", made[-2])).to_be_visible()
    expect(card_in(page, "backlog", made[-2])).to_have_count(0)
    expect(column.locator(".count")).to_have_text(str(PAGE_SIZE + 4))
    expect(column.locator(".show-more")).to_be_hidden()


def test_cards_entering_a_column_together_all_arrive(open_context, project, user):
    """Cards that enter a column together (a merge to staging, say) all appear live. The first
    card's answer already counts them all; each card's own answer says how many tasks its
    column holds, so that count does not hide the later cards behind "show more"."""
    tasks = [
        factories.make_task(project=project, title=f"together {i}", position=i) for i in range(3)
    ]
    board = open_board(open_context(user), project.slug)
    # The board's card fetches are held until every card has moved, then answered in order.
    held: dict[int, list[Route]] = {}
    released = False

    def hold(route: Route) -> None:
        if released:
            route.continue_()
        else:
            task_id = int(route.request.url.rstrip("/").rsplit("/", 1)[-1])
            held.setdefault(task_id, []).append(route)

    board.route("**/board/cards/*/", hold)
    mover = open_context(user).new_page()
    mover.goto("/")  # sets the CSRF cookie
    token = next(c["value"] for c in mover.context.cookies() if c["name"] == "csrftoken")
    for task in tasks:
        answer = mover.request.post(
            f"/projects/{project.slug}/tasks/{task.pk}/move/",
            data={"to_state": "in_progress", "agent": factories.make_agent()[0].pk},
            headers={"X-CSRFToken": token},
        )
        assert answer.ok, answer.text()
    deadline = time.monotonic() + WAIT_MS / 1000
    while not all(task.pk in held for task in tasks) and time.monotonic() < deadline:
        board.wait_for_timeout(50)
    released = True
    for task in tasks:  # in claim order: the later cards land past the first one
        for route in held.get(task.pk, []):
            route.continue_()
    column = board.locator('section.column[data-state="in_progress"]')
    for task in tasks:
        expect(card_in(board, "in_progress", task)).to_be_visible()
    expect(column.locator(".count")).to_have_text("3")
    expect(column.locator(".show-more")).to_be_hidden()


def test_a_board_that_lost_its_socket_redraws_from_the_database_on_reconnect(
    open_context, project, user
):
    """Events sent while a board is offline are gone; on reconnect it fetches its columns again.

    The board's WebSocket goes through Playwright's WebSocket route, a proxy to daphne that the
    test can cut, and that refuses new connections while the change is made."""
    moved = factories.make_task(project=project, title="Moved while the board was offline")
    page = open_context(user).new_page()
    proxies: list[WebSocketRoute] = []
    refusing = False

    def proxy(socket: WebSocketRoute) -> None:
        if refusing:
            socket.close(code=1013)  # "try again later": the board backs off and retries
            return
        socket.connect_to_server()
        proxies.append(socket)

    page.route_web_socket(re.compile(r"/ws/projects/"), proxy)
    page.goto(f"/projects/{project.slug}/board/")
    root = page.locator("#board-root")
    expect(root).to_have_attribute("data-live", "open")
    synced_before = root.get_attribute("data-synced")

    refusing = True
    proxies[-1].close()
    expect(root).to_have_attribute("data-live", "closed")
    services.task_transition(
        task_id=moved.pk,
        to_state=S.IN_PROGRESS,
        actor=factories.system(),
        agent_id=factories.make_agent()[0].pk,
    )
    page.wait_for_timeout(300)  # an event could not reach it: the card stays where it was
    expect(card_in(page, "backlog", moved)).to_be_visible()

    refusing = False
    expect(root).to_have_attribute("data-live", "open")
    expect(card_in(page, "in_progress", moved)).to_be_visible()
    expect(page.locator('section.column[data-state="in_progress"] .count')).to_have_text("1")
    assert root.get_attribute("data-synced") != synced_before
    assert len(proxies) == 2  # the first socket, and the one the board reopened


def test_an_option_clicked_on_one_card_answers_shows_on_the_other_board_and_wakes_the_agent(
    open_context, project, user, live_url, artifacts_dir, settings
):
    """Two people, two browsers; the agent waits in check_response through the real MCP client
    on the board's own /mcp."""
    import asyncio

    settings.PROJECT_DEFAULT_ROLE = ""  # the roles below are all these two people have
    import threading

    from tests.mcpbridge.conftest import call, http_client

    Membership.objects.create(user=user, project=project, role="member")
    agent, token = factories.make_agent(name="claude-9")
    task = factories.make_task(project=project, title="Pick a greeting")
    services.task_claim_next(agent=agent, project=project)
    question = services.question_ask(
        task_id=task.pk, agent=agent, question="Which greeting?", options=["Hello", "Welcome"]
    )
    other = factories.make_user()
    Membership.objects.create(user=other, project=project, role="viewer")
    mine = open_board(open_context(user), project.slug)
    theirs = open_board(open_context(other), project.slug)
    card = card_in(mine, "needs_input", task)
    expect(card.locator(".card-question .question-text")).to_have_text("Which greeting?")
    # A viewer sees the question, not the buttons: answering needs the member role.
    expect(card_in(theirs, "needs_input", task).locator(".question-text")).to_be_visible()
    expect(card_in(theirs, "needs_input", task).locator(".answer-option")).to_have_count(0)

    woke: dict = {}

    def wait_for_answer() -> None:
        async def waiting() -> None:
            async with http_client(f"{live_url}/mcp", token) as client:
                woke["answer"] = await call(
                    client, "check_response", question_id=question.pk, wait_seconds=30
                )
                woke["at"] = time.monotonic()

        asyncio.run(waiting())

    waiter = threading.Thread(target=wait_for_answer)
    waiter.start()
    time.sleep(1.0)  # the wait is open before the click (no assertion on speed)
    mine.screenshot(path=os.path.join(artifacts_dir, "board-question.png"), full_page=True)
    clicked_at = time.monotonic()
    card.get_by_role("button", name="Welcome").click()

    for page in (mine, theirs):
        expect(card_in(page, "in_progress", task)).to_be_visible()
        expect(card_in(page, "in_progress", task).locator(".card-question")).to_have_count(0)
    waiter.join(timeout=30)
    error, answer = woke["answer"]
    assert not error and answer["status"] == "answered" and answer["answer"] == "Welcome"
    assert woke["at"] >= clicked_at  # woken by the click, not by its own timeout
    question.refresh_from_db()
    assert question.answer == "Welcome" and question.answered_by == user


def test_free_text_beside_the_options_answers_too(open_context, project, user):
    agent, _ = factories.make_agent(name="codex-9")
    task = factories.make_task(project=project, title="Name it")
    services.task_claim_next(agent=agent, project=project)
    question = services.question_ask(task_id=task.pk, agent=agent, question="What name?")
    board = open_board(open_context(user), project.slug)
    card = card_in(board, "needs_input", task)
    card.get_by_label(f"Answer the question of task {task.pk}").fill("Orbit")
    card.get_by_role("button", name="Send").click()

    expect(card_in(board, "in_progress", task)).to_be_visible()
    question.refresh_from_db()
    assert question.answer == "Orbit"


def test_keyboard_n_opens_a_new_task_and_slash_searches(open_context, project, user):
    factories.make_task(project=project, title="Find the needle")
    factories.make_task(project=project, title="Other hay")
    board = open_board(open_context(user), project.slug)

    board.keyboard.press("/")
    expect(board.locator("#filter-text")).to_be_focused()
    board.keyboard.type("needle")  # typed into the search, so "n" here opens nothing
    expect(board.get_by_text("Find the needle")).to_be_visible()
    expect(board.get_by_text("Other hay")).to_be_hidden()
    assert "/board/" in board.url

    board.locator("#filter-text").blur()
    board.keyboard.press("n")
    board.wait_for_url(re.compile(r"/tasks/new/$"))
    expect(board.locator("#id_title")).to_be_visible()
