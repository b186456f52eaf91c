"""The git the runner runs in a task checkout (async subprocesses, no shell).

A credential for the clone comes as an HTTP header through GIT_CONFIG_* environment variables,
so it never appears on a command line (`ps`) or in `.git/config`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class GitError(Exception):
    pass


class Git:
    def __init__(self, checkout: Path, *, auth_header: str = "", timeout: float = 300.0) -> None:
        self.checkout = checkout
        self.timeout = timeout
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "AiWorker agent"),
            "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "agent@aiworker.invalid"),
            "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME", "AiWorker agent"),
            "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL", "agent@aiworker.invalid"),
        }
        if auth_header:
            # Appended to any GIT_CONFIG_* the pod already has (e.g. url.<x>.insteadOf).
            index = int(self.env.get("GIT_CONFIG_COUNT") or 0)
            self.env.update(
                {
                    "GIT_CONFIG_COUNT": str(index + 1),
                    f"GIT_CONFIG_KEY_{index}": "http.extraHeader",
                    f"GIT_CONFIG_VALUE_{index}": auth_header,
                }
            )

    async def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd or self.checkout,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitError(f"git {args[0]} timed out after {self.timeout:.0f} s") from None
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {err.decode(errors='replace').strip()[-400:]}")
        return out.decode(errors="replace").strip()

    async def clone(self, url: str, branch: str) -> None:
        self.checkout.parent.mkdir(parents=True, exist_ok=True)
        await self.run(
            "clone",
            "--quiet",
            "--branch",
            branch,
            url,
            str(self.checkout),
            cwd=self.checkout.parent,
        )

    async def checkout_branch(self, branch: str, default_branch: str) -> str:
        """Check out the task branch (the remote's, when it exists) and return the base sha.

        The base is where the default branch is, so "did the agent change anything" is a
        comparison with it even when the branch carries work of an earlier attempt.
        """
        base = await self.run("rev-parse", f"origin/{default_branch}")
        remote = await self.run("ls-remote", "--heads", "origin", branch)
        if remote:
            await self.run("fetch", "--quiet", "origin", f"refs/heads/{branch}")
            await self.run("checkout", "--quiet", "-B", branch, "FETCH_HEAD")
        else:
            await self.run("checkout", "--quiet", "-B", branch, f"origin/{default_branch}")
        return base

    async def commit_all(self, message: str) -> str:
        """Commit whatever the agent left uncommitted; return the head sha."""
        await self.run("add", "--all")
        if await self.run("status", "--porcelain"):
            await self.run("commit", "--quiet", "--message", message)
        return await self.run("rev-parse", "HEAD")

    async def push(self, branch: str) -> None:
        await self.run("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
