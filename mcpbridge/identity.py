"""What the MCP server says about itself, importable without Django or the `mcp` package.

The stdio front (mcpbridge/stdio.py) answers `initialize` from this before the platform has
loaded, and the real server (mcpbridge/server.py) is built from the same values.
"""

NAME = "aiworker"
# The platform's version (pyproject.toml's [project] version; a test keeps the two equal).
VERSION = "0.1.0"

INSTRUCTIONS = """AiWorker gives you development tasks. Loop: get_next_task -> work on the \
task's branch -> create_branch / create_pull_request -> trigger_preview_deploy -> \
complete_task. Call heartbeat at least every minute; ask_user_question + check_response when \
you are blocked; get_feedback after changes are requested; release_task if you must give up."""
