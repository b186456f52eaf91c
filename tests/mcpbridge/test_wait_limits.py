"""check_response waits as attacks: a revoked agent's wait ends at once without the answer, and
an agent cannot open more waits than MCP_MAX_WAITS_PER_AGENT (real MCP client over HTTP)."""

import asyncio
import threading
import time

import pytest

from agents import services as agent_services
from aiworker.actors import Actor
from tasks import services as task_services
from tasks.models import TaskQuestion
from tests import factories
from tests.mcpbridge.conftest import call, http_client, run

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_revoked_agents_wait_ends_at_once_without_the_answer(mcp_url):
    task = factories.make_task()
    agent, token = factories.make_agent()
    user = factories.make_user()
    revoked_at: list[float] = []

    async def scenario():
        async with http_client(mcp_url, token) as client:
            await call(client, "get_next_task")
            _, asked = await call(client, "ask_user_question", task_id=task.pk, question="Go?")
            question_id = asked["question_id"]

            def revoke_then_answer() -> None:
                time.sleep(1.0)  # the waiter is in its wait
                agent_services.agent_revoke(agent_id=agent.pk)
                revoked_at.append(time.monotonic())
                time.sleep(0.2)
                task_services.question_answer(
                    question_id=question_id, actor=Actor.of_user(user), answer="secret plan"
                )

            thread = threading.Thread(target=revoke_then_answer)
            thread.start()
            error, answer = await call(
                client, "check_response", question_id=question_id, wait_seconds=30
            )
            returned = time.monotonic()
            await asyncio.to_thread(thread.join)
            return error, answer, returned

    error, answer, returned = run(scenario())
    assert error is True
    assert "[permission_denied]" in str(answer) and "revoked" in str(answer)
    assert "secret plan" not in str(answer)
    assert returned - revoked_at[0] < 2  # woken by the revocation, within one poll at worst
    assert TaskQuestion.objects.get(task=task).answer == "secret plan"  # the person's answer stays


def test_one_wait_more_than_the_cap_is_refused_at_once(mcp_url, settings):
    settings.MCP_MAX_WAITS_PER_AGENT = 2
    task = factories.make_task()
    _, token = factories.make_agent()

    async def scenario():
        async with http_client(mcp_url, token) as client:
            await call(client, "get_next_task")
            _, asked = await call(client, "ask_user_question", task_id=task.pk, question="Go?")
            question_id = asked["question_id"]
            waits = [
                asyncio.create_task(
                    call(client, "check_response", question_id=question_id, wait_seconds=3)
                )
                for _ in range(2)
            ]
            await asyncio.sleep(0.8)  # both are waiting
            started = time.monotonic()
            refused = await call(client, "check_response", question_id=question_id, wait_seconds=3)
            refused_in = time.monotonic() - started
            done = await asyncio.gather(*waits)
            again = await call(client, "check_response", question_id=question_id, wait_seconds=0.2)
            return refused, refused_in, done, again

    (error, text), refused_in, done, again = run(scenario())
    assert error is True and "[too_many_waits]" in str(text) and "at most 2" in str(text)
    assert refused_in < 1.5  # at once, not after a wait
    assert [is_error for is_error, _ in done] == [False, False]
    assert again[0] is False and again[1]["status"] == "pending"  # the slots came back
