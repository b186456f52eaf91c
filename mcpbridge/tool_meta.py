"""How each tool is presented to a model: its annotations, its dedented description, and the
text of every error it can answer ("[code] what was wrong. what to do.").

Clients decide from the annotations what they may call without asking (Codex refuses a tool
that is not known to be safe under `approval_policy = "never"`), so every tool declares all
four hints. Errors are the tool result's own text, starting with the code: the SDK's
"Error executing tool X: " prefix and pydantic's raw validation text never reach the model.
"""

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import ToolAnnotations
from pydantic import ValidationError

logger = logging.getLogger("mcpbridge")
F = TypeVar("F", bound=Callable[..., Any])


def hints(
    *, read_only: bool, destructive: bool = False, idempotent: bool, open_world: bool = False
) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


# Reads nothing but the platform's own rows.
READ = hints(read_only=True, idempotent=True)
# Adds a row (a timeline line, a question, a task): calling twice adds two.
ADD = hints(read_only=False, idempotent=False)
# Sets something to a value: calling twice with the same arguments changes nothing more.
SET = hints(read_only=False, idempotent=True)
# Moves the task through the state machine: a second identical call is refused.
MOVE = hints(read_only=False, idempotent=False)
# Marks what it returns as seen: the next call answers only what is new.
CONSUME = hints(read_only=False, idempotent=False)
# Overwrites what the fields held.
OVERWRITE = hints(read_only=False, destructive=True, idempotent=True)
# Gives the task back: the agent's hold on it and its lease end.
GIVE_UP = hints(read_only=False, destructive=True, idempotent=False)
# Reaches Gitea or the deployment driver, and returns what exists when it already does.
EXTERNAL = hints(read_only=False, idempotent=True, open_world=True)


def tool(server: MCPServer, annotations: ToolAnnotations) -> Callable[[F], F]:
    """`@server.tool()` with the annotations and the docstring as `inspect.cleandoc` leaves it
    (docstrings keep their source indentation, which reaches the model as stray spaces)."""

    def register(fn: F) -> F:
        server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), annotations=annotations)
        return fn

    return register


# pydantic error types, as the sentence a model can act on (the value itself is not echoed:
# it is the caller's data, and the field and the rule say enough).
_RULES: dict[str, str] = {
    "missing": "is required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "extra_forbidden": "is not an accepted field",
    "unexpected_keyword_argument": "is not an accepted argument",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
}


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the arguments"


def invalid_arguments(exc: ValidationError) -> str:
    """`[invalid] task_id must be an integer; message is required. Fix …`"""
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        rule = _RULES.get(error["type"])
        context = error.get("ctx") or {}
        try:
            said = rule.format(**context) if rule else error["msg"][:1].lower() + error["msg"][1:]
        except (KeyError, IndexError):
            said = error["msg"]
        sentence = f"{_where(tuple(error['loc']))} {said}"
        if sentence not in problems:
            problems.append(sentence)
    return f"[invalid] {'; '.join(problems)}. Fix the argument and call again."


def error_text(tool_name: str, exc: Exception) -> str:
    """The text of the tool result for an exception a tool call raised (never a traceback)."""
    cause = exc.__cause__
    if isinstance(exc, ToolError) and isinstance(cause, ValidationError):
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in cause.errors()})
        logger.info("Tool %r rejected arguments: %r", tool_name, fields)
        return invalid_arguments(cause)
    if isinstance(exc, UnexpectedToolError) or not isinstance(exc, ToolError):
        logger.error("Tool %r raised an unexpected exception", tool_name, exc_info=exc)
        return (
            f"[internal] {tool_name} failed on the server (logged there). Call get_context to "
            "see where your task is, then try again or release_task."
        )
    # Our own refusals come wrapped once by the SDK: the message is the inner error's.
    text = str(cause) if isinstance(cause, ToolError) else str(exc)
    if not text.startswith("["):
        if text.startswith("Unknown tool"):
            text = f"[not_found] {text}. List the tools to see what this server offers."
        else:
            text = f"[invalid] {text}"
    logger.info("Tool %r refused: %r", tool_name, text)
    return text
