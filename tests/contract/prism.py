"""Prism (npm @stoplight/prism-cli, pinned in tests/contract/package.json) as the independent
validator of the Gitea adapter: `proxy --errors` checks every request against Gitea's API
description before forwarding it to the stand-in, and every answer on its way back.

Prism ignores swagger 2.0's `basePath`, so the description is rewritten once with `/api/v1` put
in front of every path; the adapter then talks to Prism exactly as it talks to a real Gitea.
Install with `make contract-deps` (`npm ci --prefix tests/contract`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = Path("/work/shared/specs/gitea-1.27-swagger.v1.json")
PRISM = HERE / "node_modules" / ".bin" / "prism"
ERROR_MARK = "✖  error"


def spec_path() -> Path:
    """Gitea's description as shipped (also vendored beside this file, for CI machines)."""
    vendored = HERE / "gitea-1.27-swagger.v1.json"
    return vendored if vendored.exists() else SPEC


def prefixed_spec(target: Path) -> Path:
    spec = json.loads(spec_path().read_text())
    base = spec.pop("basePath", "") or ""
    spec["paths"] = {base + path: item for path, item in spec["paths"].items()}
    target.write_text(json.dumps(spec))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prism:
    """A running `prism proxy --errors`; `violations()` are its refusals since `mark()`."""

    def __init__(self, *, upstream: str, workdir: Path) -> None:
        if not PRISM.exists():
            raise RuntimeError(
                f"Prism is not installed at {PRISM}: run `make contract-deps` "
                "(npm ci --prefix tests/contract)."
            )
        self.port = free_port()
        self.log_path = workdir / "prism.log"
        spec = prefixed_spec(workdir / "gitea-prefixed.json")
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                *(str(PRISM), "proxy", "--errors", "-h", "127.0.0.1", "-p", str(self.port)),
                *(str(spec), upstream),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._offset = 0
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Prism exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/api/v1/version", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # it answers (the stand-in has no /version): ready
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("Prism did not start in time")

    def mark(self) -> None:
        self._offset = self.log_path.stat().st_size

    def violations(self) -> list[str]:
        time.sleep(0.2)  # Prism writes its log asynchronously, just after it answers
        with self.log_path.open(encoding="utf-8", errors="replace") as fh:
            fh.seek(self._offset)
            text = fh.read()
        # The readiness probe (GET /api/v1/version, no token) is Prism's only expected refusal.
        return [
            line
            for line in text.splitlines()
            if ERROR_MARK in line and "get /api/v1/version " not in line
        ]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
