"""The record of an agent CLI's MCP calls: one row per agent and tool, counted up in place."""

import pytest

from agents.mcp_calls import agent_cli_call_count, agent_record_mcp_call
from agents.models import AgentMcpCall
from tests import factories

pytestmark = pytest.mark.django_db


def test_calls_and_refusals_are_counted_on_one_row_per_tool():
    agent, _ = factories.make_agent()
    other, _ = factories.make_agent()
    agent_record_mcp_call(agent=agent, tool="get_context", client="claude-cli/2.0")
    agent_record_mcp_call(agent=agent, tool="get_context", client="claude-cli/2.1")
    agent_record_mcp_call(
        agent=agent, tool="get_context", error_code="not_found", client="claude-cli/2.1"
    )
    agent_record_mcp_call(agent=agent, tool="log_progress", client="codex")
    agent_record_mcp_call(agent=other, tool="get_context", client="opencode")

    row = AgentMcpCall.objects.get(agent=agent, tool="get_context")
    assert (row.calls, row.refused, row.last_error_code, row.last_client) == (
        3,
        1,
        "not_found",
        "claude-cli/2.1",
    )
    assert AgentMcpCall.objects.filter(agent=agent).count() == 2
    assert agent_cli_call_count(agent) == 4
    assert agent_cli_call_count(other) == 1
