"""Claims under contention and the check_response wake-up, with real clients over HTTP."""

import asyncio
import threading
import time
from collections import Counter

import pytest

from agents.models import AgentStatus
from aiworker.actors import Actor
from tasks import services as task_services
from tasks.models import Task
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run

pytestmark = pytest.mark.django_db(transaction=True)
AGENTS = 32
TASKS = 500


@pytest.mark.mariadb
def test_32_agents_claim_500_tasks_each_exactly_once(mcp_url):
    project = factories.make_project()
    Task.objects.bulk_create(
        Task(project=project, title=f"T{i}", priority=i % 4, position=i) for i in range(TASKS)
    )
    tokens = [factories.make_agent()[1] for _ in range(AGENTS)]

    async def agent_loop(token: str) -> list[int]:
        claimed: list[int] = []
        async with http_client(mcp_url, token) as client:
            while True:
                error, answer = await call(client, "get_next_task")
                assert not error, answer
                if answer["task"] is None:
                    return claimed
                task_id = answer["task"]["id"]
                claimed.append(task_id)
                error, done = await call(client, "complete_task", task_id=task_id, summary="ok")
                assert not error, done

    async def everyone() -> list[list[int]]:
        return await asyncio.gather(*(agent_loop(t) for t in tokens))

    per_agent = run(everyone())
    counts = Counter(task_id for claims in per_agent for task_id in claims)
    assert len(counts) == TASKS  # none lost
    assert max(counts.values()) == 1  # none twice
    assert set(counts) == set(Task.objects.values_list("pk", flat=True))
    assert Task.objects.exclude(state="ready_to_test").count() == 0
    assert set(Task.objects.values_list("attempt_count", flat=True)) == {1}
    assert sum(1 for claims in per_agent if claims) > 1  # the work was really shared


def test_check_response_wakes_soon_after_the_answer(mcp_url, capsys):
    task = factories.make_task()
    agent, token = factories.make_agent()
    user = factories.make_user()
    answered_at: list[float] = []

    async def scenario():
        async with http_client(mcp_url, token) as client:
            await call(client, "get_next_task")
            _, asked = await call(client, "ask_user_question", task_id=task.pk, question="Go?")
            question_id = asked["question_id"]

            def answer_later() -> None:
                time.sleep(1.5)  # let the waiter settle into its wait
                task_services.question_answer(
                    question_id=question_id, actor=Actor.of_user(user), answer="yes"
                )
                answered_at.append(time.monotonic())

            thread = threading.Thread(target=answer_later)
            thread.start()
            _, answer = await call(
                client, "check_response", question_id=question_id, wait_seconds=30
            )
            returned = time.monotonic()
            await asyncio.to_thread(thread.join)
            return answer, returned

    answer, returned = run(scenario())
    assert answer["status"] == "answered" and answer["answer"] == "yes"
    wake = returned - answered_at[0]
    with capsys.disabled():
        print(f"\ncheck_response woke {wake * 1000:.0f} ms after the answer was committed")
    assert wake < 5  # generous: the bound is about one second (one poll)
    agent.refresh_from_db()
    assert agent.status == AgentStatus.BUSY
