"""A scripted model on loopback for the real agent CLIs (no LLM runs here).

It speaks what the three pinned CLIs send: the Anthropic Messages API (Claude Code, through
ANTHROPIC_BASE_URL), the OpenAI Responses API (Codex, through a custom model provider) and
OpenAI Chat Completions (OpenCode, through an `@ai-sdk/openai-compatible` provider), each
streamed as server-sent events, with tool calls in each API's own shape.

The script is read from the conversation each request carries, so the server keeps no state
between turns. Given the tools the CLI offers (found by their suffix: Claude names them
`mcp__aiworker__log_progress`, Codex puts them in a `mcp__aiworker` namespace, OpenCode
`aiworker_log_progress`), the model calls, one per turn:

    log_progress -> ask_user_question -> check_response (again while pending)
    -> the CLI's own file tool (Write, apply_patch or write) -> a closing text

A CLI whose platform tools never arrived gets the closing text at once: it edits nothing.
Every request is kept (`requests`) so a test can say what the CLI sent.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PLATFORM_TOOLS = ("log_progress", "ask_user_question", "check_response")
FILE_NAME = "GREETING.md"
QUESTION = "Which greeting should the page show?"
OPTIONS = ["Hello", "Welcome"]


@dataclass
class Call:
    """A tool call the conversation already holds, with the text of its result."""

    name: str  # the name the CLI offered
    arguments: dict[str, Any]
    result: str | None


@dataclass
class Turn:
    """What the model says next: a tool call (name, arguments), or text that ends the turn."""

    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    custom: bool = False  # a Responses "custom" (freeform) tool: arguments["input"] is the text
    search: bool = False  # a Responses client-side tool_search: arguments are the query


@dataclass
class Offered:
    names: list[str]  # every tool name, namespaced ones as the model must call them
    custom: set[str]  # Responses freeform tools
    namespaces: dict[str, str]  # tool name -> its Responses namespace
    search: bool = False  # Responses tool_search offered (deferred tools)


def platform_tool(offered: list[str], tool: str) -> str | None:
    """The name under which the CLI offers the platform's `tool`."""
    for name in offered:
        if name == tool or ("aiworker" in name and re.search(rf"_{re.escape(tool)}$", name)):
            return name
    return None


def task_id_of(text: str) -> int | None:
    match = re.search(r"task #(\d+)", text)
    return int(match.group(1)) if match else None


def workdir_of(text: str) -> str | None:
    """The checkout's absolute path, from the CLI's system prompt or environment context."""
    patterns = (
        r"<cwd>([^<]+)</cwd>",
        r"Primary working directory:\s*(\S+)",
        r"[Ww]orking directory:\s*(\S+)",
    )
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    return None


def _json(text: str | None) -> dict[str, Any]:
    """The first JSON object in a tool result (CLIs wrap MCP results in their own text)."""
    if not text:
        return {}
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return {}


class Script:
    def __init__(self, *, wait_seconds: float = 20) -> None:
        self.wait_seconds = wait_seconds

    def next_turn(self, *, offered: Offered, calls: list[Call], text: str) -> Turn:
        names = {t: platform_tool(offered.names, t) for t in PLATFORM_TOOLS}
        task_id = task_id_of(text)
        searched = any(c.name == "tool_search" for c in calls)
        if not all(names.values()) and offered.search and not searched:
            # Codex defers MCP tools behind tool_search for the models it knows.
            query = {"query": "aiworker " + " ".join(PLATFORM_TOOLS), "limit": 20}
            return Turn("tool_search", query, search=True)
        if task_id is None or not all(names.values()):
            return Turn(text="The platform's tools are not available; I changed nothing.")
        done = {c.name: c for c in calls}
        if names["log_progress"] not in done:
            message = "Scripted model: reading the task."
            return Turn(names["log_progress"], {"task_id": task_id, "message": message})
        asked = done.get(names["ask_user_question"] or "")
        if asked is None:
            arguments = {"task_id": task_id, "question": QUESTION, "options": OPTIONS}
            return Turn(names["ask_user_question"] or "", arguments)
        question_id = _json(asked.result).get("question_id")
        if not question_id:
            return Turn(text=f"ask_user_question failed: {asked.result}")
        answer = _json(done[c].result) if (c := names["check_response"] or "") in done else {}
        if answer.get("status") != "answered":
            arguments = {"question_id": question_id, "wait_seconds": self.wait_seconds}
            return Turn(names["check_response"] or "", arguments)
        content = f"# {answer.get('answer')}\n\nAnswered by {answer.get('answered_by')}.\n"
        edit = self._edit(offered, calls, text, content)
        if edit is not None:
            return edit
        return Turn(text=f"Wrote {FILE_NAME} with the greeting {answer.get('answer')!r}.")

    def _edit(self, offered: Offered, calls: list[Call], text: str, content: str) -> Turn | None:
        """The CLI's own file tool, once; None when it has been called."""
        workdir = workdir_of(text) or "."
        for name, arguments in (
            ("Write", {"file_path": f"{workdir}/{FILE_NAME}", "content": content}),  # Claude
            ("write", {"filePath": f"{workdir}/{FILE_NAME}", "content": content}),  # OpenCode
        ):
            if name in offered.names:
                if any(c.name == name for c in calls):
                    return None
                return Turn(name, arguments)
        if "apply_patch" in offered.names:  # Codex
            if any(c.name == "apply_patch" for c in calls):
                return None
            body = "".join(f"+{line}\n" for line in content.splitlines())
            patch = f"*** Begin Patch\n*** Add File: {FILE_NAME}\n{body}*** End Patch\n"
            if "apply_patch" in offered.custom:
                return Turn("apply_patch", {"input": patch}, custom=True)
            return Turn("apply_patch", {"input": patch})
        return None


# --- the three APIs: what the CLI offered and did, and the answer in that API's shape -------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(part) for part in content)
    if isinstance(content, dict):
        for key in ("text", "content", "output"):
            if key in content:
                return _text_of(content[key])
    return ""


def anthropic_view(body: dict) -> tuple[Offered, list[Call], str]:
    names = [t.get("name", "") for t in body.get("tools") or []]
    results: dict[str, str] = {}
    uses: list[tuple[str, str, dict]] = []
    texts = [_text_of(body.get("system"))]
    for message in body.get("messages") or []:
        content = message.get("content")
        for block in content if isinstance(content, list) else [{"type": "text", "text": content}]:
            kind = block.get("type")
            if kind == "tool_use":
                uses.append((block["id"], block["name"], block.get("input") or {}))
            elif kind == "tool_result":
                results[block["tool_use_id"]] = _text_of(block.get("content"))
            elif kind == "text" and message.get("role") == "user":
                texts.append(block.get("text") or "")
    calls = [Call(name, args, results.get(use_id)) for use_id, name, args in uses]
    return Offered(names, set(), {}), calls, "\n".join(texts)


def responses_view(body: dict) -> tuple[Offered, list[Call], str]:
    names: list[str] = []
    custom: set[str] = set()
    namespaces: dict[str, str] = {}

    def offer(tools: list[dict]) -> None:
        for tool in tools:
            if tool.get("type") == "namespace":
                for inner in tool.get("tools") or []:
                    names.append(inner.get("name", ""))
                    namespaces[inner.get("name", "")] = tool.get("name", "")
            elif tool.get("name"):
                names.append(tool["name"])
                if tool.get("type") == "custom":
                    custom.add(tool["name"])

    offer(body.get("tools") or [])
    search = any(t.get("type") == "tool_search" for t in body.get("tools") or [])
    results: dict[str, str] = {}
    uses: list[tuple[str, str, dict]] = []
    texts = [_text_of(body.get("instructions"))]
    for item in body.get("input") or []:
        kind = item.get("type")
        if kind == "tool_search_call":
            uses.append((item.get("call_id", ""), "tool_search", item.get("arguments") or {}))
        elif kind == "tool_search_output":
            offer(item.get("tools") or [])  # the deferred tools, now loaded
            results[item.get("call_id", "")] = "loaded"
        elif kind == "function_call":
            try:
                arguments = json.loads(item.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            uses.append((item["call_id"], item["name"], arguments))
        elif kind == "custom_tool_call":
            uses.append((item["call_id"], item["name"], {"input": item.get("input")}))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            results[item["call_id"]] = _text_of(item.get("output"))
        elif item.get("role") in ("user", "developer", "system"):
            texts.append(_text_of(item.get("content")))
    calls = [Call(name, args, results.get(call_id)) for call_id, name, args in uses]
    return Offered(names, custom, namespaces, search), calls, "\n".join(texts)


def chat_view(body: dict) -> tuple[Offered, list[Call], str]:
    names = [(t.get("function") or {}).get("name", "") for t in body.get("tools") or []]
    results: dict[str, str] = {}
    uses: list[tuple[str, str, dict]] = []
    texts: list[str] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                uses.append((call["id"], function.get("name", ""), arguments))
        elif role == "tool":
            results[message.get("tool_call_id", "")] = _text_of(message.get("content"))
        elif role in ("user", "system"):
            texts.append(_text_of(message.get("content")))
    calls = [Call(name, args, results.get(call_id)) for call_id, name, args in uses]
    return Offered(names, set(), {}), calls, "\n".join(texts)


def _sse(events: list[tuple[str | None, dict | str]]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def anthropic_answer(body: dict, turn: Turn) -> tuple[str, bytes]:
    model = body.get("model") or "scripted"
    usage = {"input_tokens": 10, "output_tokens": 5}
    if turn.tool:
        block: dict[str, Any] = {"type": "tool_use", "id": _id("toolu"), "name": turn.tool}
        stop = "tool_use"
    else:
        block = {"type": "text", "text": turn.text}
        stop = "end_turn"
    message = {
        "id": _id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{**block, "input": turn.arguments} if turn.tool else block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if not body.get("stream"):
        return "application/json", json.dumps(message).encode()
    start = {**block, "input": {}} if turn.tool else {"type": "text", "text": ""}
    delta = (
        {"type": "input_json_delta", "partial_json": json.dumps(turn.arguments)}
        if turn.tool
        else {"type": "text_delta", "text": turn.text}
    )
    events: list[tuple[str | None, dict | str]] = [
        ("message_start", {"type": "message_start", "message": {**message, "content": []}}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": start},
        ),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "text/event-stream", _sse(events)


def responses_answer(body: dict, turn: Turn, offered: Offered) -> tuple[str, bytes]:
    if turn.search:
        item: dict[str, Any] = {
            "type": "tool_search_call",
            "id": _id("ts"),
            "call_id": _id("call"),
            "execution": "client",
            "arguments": turn.arguments,
            "status": "completed",
        }
    elif turn.custom:
        item = {
            "type": "custom_tool_call",
            "id": _id("ctc"),
            "call_id": _id("call"),
            "name": turn.tool,
            "input": turn.arguments["input"],
            "status": "completed",
        }
    elif turn.tool:
        item = {
            "type": "function_call",
            "id": _id("fc"),
            "call_id": _id("call"),
            "name": turn.tool,
            "arguments": json.dumps(turn.arguments),
            "status": "completed",
        }
        if turn.tool in offered.namespaces:
            item["namespace"] = offered.namespaces[turn.tool]
    else:
        item = {
            "type": "message",
            "id": _id("msg"),
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
        }
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    }
    response = {
        "id": _id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model") or "scripted",
        "status": "in_progress",
        "output": [],
    }
    events: list[tuple[str | None, dict | str]] = [
        ("response.created", {"type": "response.created", "response": response}),
        (
            "response.output_item.added",
            {"type": "response.output_item.added", "output_index": 0, "item": item},
        ),
    ]
    if not turn.tool:
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "delta": turn.text,
                },
            )
        )
    events += [
        (
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": 0, "item": item},
        ),
        (
            "response.completed",
            {
                "type": "response.completed",
                "response": {**response, "status": "completed", "output": [item], "usage": usage},
            },
        ),
    ]
    return "text/event-stream", _sse(events)


def chat_answer(body: dict, turn: Turn) -> tuple[str, bytes]:
    base = {
        "id": _id("chatcmpl"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or "scripted",
    }

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    if turn.tool:
        call = {
            "index": 0,
            "id": _id("call"),
            "type": "function",
            "function": {"name": turn.tool, "arguments": ""},
        }
        more = {"index": 0, "function": {"arguments": json.dumps(turn.arguments)}}
        chunks = [
            chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
            chunk({"tool_calls": [more]}),
            chunk({}, "tool_calls"),
        ]
    else:
        chunks = [chunk({"role": "assistant", "content": turn.text}), chunk({}, "stop")]
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    chunks.append({**base, "choices": [], "usage": usage})
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        if turn.tool:
            arguments = json.dumps(turn.arguments)
            function = {"name": turn.tool, "arguments": arguments}
            message["tool_calls"] = [{"id": _id("call"), "type": "function", "function": function}]
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": chunks[-2]["choices"][0]["finish_reason"],
        }
        answer = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return "application/json", json.dumps(answer).encode()
    return "text/event-stream", _sse([(None, c) for c in chunks] + [(None, "[DONE]")])


# --- the server -----------------------------------------------------------------------------


class ModelServer:
    """The scripted model on a free loopback port; `url` is its base, `requests` what came."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.requests: list[tuple[str, dict]] = []
        self.turns: list[Turn] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.requests.append((f"GET {self.path}", {}))
                if self.path.rstrip("/").endswith("/models"):
                    models = [{"id": "scripted", "object": "model", "owned_by": "aiworker"}]
                    self._send(
                        200,
                        "application/json",
                        json.dumps({"object": "list", "data": models}).encode(),
                    )
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                with server.lock:
                    server.requests.append((f"POST {self.path}", body))
                    if os.environ.get("MODEL_SERVER_LOG"):  # to study what a CLI sends
                        with open(os.environ["MODEL_SERVER_LOG"], "a") as fh:
                            fh.write(json.dumps({"path": self.path, "body": body}) + "\n")
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/messages/count_tokens"):
                    self._send(200, "application/json", b'{"input_tokens": 10}')
                elif path.endswith("/messages"):
                    offered, calls, text = anthropic_view(body)
                    self._send(200, *anthropic_answer(body, server.turn(offered, calls, text)))
                elif path.endswith("/responses"):
                    offered, calls, text = responses_view(body)
                    turn = server.turn(offered, calls, text)
                    self._send(200, *responses_answer(body, turn, offered))
                elif path.endswith("/chat/completions"):
                    offered, calls, text = chat_view(body)
                    self._send(200, *chat_answer(body, server.turn(offered, calls, text)))
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def _send(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def turn(self, offered: Offered, calls: list[Call], text: str) -> Turn:
        if not offered.names:  # a side request (a title, a summary): plain text
            return Turn(text="Scripted.")
        turn = self.script.next_turn(offered=offered, calls=calls, text=text)
        with self.lock:
            self.turns.append(turn)
        return turn

    def called(self, tool: str) -> bool:
        """Whether the model has asked the CLI to call `tool` (whatever its prefix)."""
        with self.lock:
            return any(t.tool.endswith(tool) for t in self.turns)

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # study what a CLI sends: python -m tests.agent_cli.model_server
    import sys

    with ModelServer() as model:
        print(model.url, flush=True)
        try:
            seen = 0
            while True:
                time.sleep(0.5)
                with model.lock:
                    fresh = model.requests[seen:]
                    seen = len(model.requests)
                for path, body in fresh:
                    sys.stdout.write(json.dumps({"path": path, "body": body}) + "\n")
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass
