"""The git the local forge runs on a project's bare repository (the git CLI, no shell).

Writes that move a branch (merges) take a lock on the repository, held across threads and
processes of this machine; a merge happens in a temporary worktree and either moves the branch
or, on a conflict, is aborted with nothing changed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiworker import errors

GIT_TIMEOUT = 120
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ZERO_SHA = "0" * 40
IDENTITY = {
    "GIT_AUTHOR_NAME": "AiWorker",
    "GIT_AUTHOR_EMAIL": "aiworker@localhost",
    "GIT_COMMITTER_NAME": "AiWorker",
    "GIT_COMMITTER_EMAIL": "aiworker@localhost",
}
# Over HTTP an agent may update only the branches of the tasks it holds: the git view names
# them in AIWORKER_ALLOWED_REFS; git itself refuses the rest before any ref moves. Unset (the
# platform's own git on this machine) means no restriction.
PRE_RECEIVE = """#!/bin/sh
# Installed by AiWorker (projects/forges/local_git.py).
[ -z "${AIWORKER_ALLOWED_REFS+set}" ] && exit 0
status=0
while read old new ref; do
  case " $AIWORKER_ALLOWED_REFS " in
    *" $ref "*)
      if [ "$new" = "@ZERO_SHA@" ]; then
        echo "AiWorker: deleting $ref is not allowed" >&2; status=1
      fi ;;
    *) echo "AiWorker: $ref is not the branch of a task you hold" >&2; status=1 ;;
  esac
done
exit $status
""".replace("@ZERO_SHA@", ZERO_SHA)

_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class GitFailed(errors.Unavailable):
    """A git command of the platform failed for a reason other than a merge conflict."""


def run(
    repo: Path,
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    input: bytes | None = None,
    env_extra: dict[str, str] | None = None,
) -> str:
    env = {**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env_extra or {})}
    env.pop("AIWORKER_ALLOWED_REFS", None)
    command = ["git", "-c", "commit.gpgsign=false"]
    if cwd is None:
        command += ["--git-dir", str(repo)]
    try:
        done = subprocess.run(
            [*command, *args],
            cwd=cwd or repo,
            env=env,
            input=input,
            capture_output=True,
            timeout=GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise GitFailed(f"git {args[0]} timed out after {GIT_TIMEOUT}s") from None
    if check and done.returncode != 0:
        text = done.stderr.decode(errors="replace").strip()[-500:]
        raise GitFailed(f"git {args[0]} failed: {text}")
    return done.stdout.decode(errors="replace").strip()


def sha_of(repo: Path, branch: str) -> str:
    """The commit `branch` points at, or "" when there is no such branch."""
    return run(
        repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
    )


def branches(repo: Path) -> dict[str, str]:
    """Every branch's full ref name and the sha it points at."""
    listing = run(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
    found = {}
    for line in listing.splitlines():
        ref, sha = line.split(" ", 1)
        found[ref] = sha
    return found


def init_bare(repo: Path, *, default_branch: str, other_branches: tuple[str, ...]) -> None:
    """A bare repository with one empty commit on each branch of the flow; an existing
    repository keeps its history and gets only the branches it lacks (and the hook)."""
    if not (repo / "HEAD").exists():
        repo.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(repo)],
            check=True,
            capture_output=True,
            timeout=GIT_TIMEOUT,
        )
    install_hooks(repo)
    base = sha_of(repo, default_branch)
    if not base:
        base = run(repo, "commit-tree", EMPTY_TREE, "-m", "Initial commit")
        run(repo, "update-ref", f"refs/heads/{default_branch}", base, ZERO_SHA)
    for branch in other_branches:
        if not sha_of(repo, branch):
            run(repo, "update-ref", f"refs/heads/{branch}", base, ZERO_SHA)


def install_hooks(repo: Path) -> None:
    hook = repo / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    if not hook.exists() or hook.read_text() != PRE_RECEIVE:
        hook.write_text(PRE_RECEIVE)
        hook.chmod(0o755)


def create_branch(repo: Path, *, name: str, base: str) -> bool:
    """True if created; False if it existed. Unknown base: NotFound."""
    if sha_of(repo, name):
        return False
    start = sha_of(repo, base)
    if not start:
        raise errors.NotFound(f"Branch {base} does not exist in the repository.")
    if run(repo, "check-ref-format", "--branch", name, check=False) != name:
        raise errors.InvalidInput(f"{name!r} is not a valid branch name.")
    # The expected old value (none) makes two racing creations one creation.
    done = run(repo, "update-ref", f"refs/heads/{name}", start, ZERO_SHA, check=False)
    return bool(sha_of(repo, name)) and done == ""


@contextmanager
def locked(repo: Path) -> Iterator[None]:
    key = str(repo.resolve())
    with _guard:
        thread_lock = _thread_locks.setdefault(key, threading.Lock())
    with thread_lock, open(repo / "aiworker.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge(repo: Path, *, head: str, base: str, message: str, no_ff: bool) -> str:
    """Merge `head` (a branch or a sha) into branch `base` in a temporary worktree; the new
    sha of `base`. A conflict raises Conflict naming the files, and `base` stays where it was."""
    with locked(repo), tempfile.TemporaryDirectory(prefix="aiw-merge-") as tmp:
        work = Path(tmp) / "work"
        run(repo, "worktree", "add", "--quiet", str(work), base)
        try:
            done = subprocess.run(
                ["git", "-c", "commit.gpgsign=false", "merge", "--quiet", "--no-edit"]
                + (["--no-ff"] if no_ff else [])
                + ["-m", message, head],
                cwd=work,
                env={**os.environ, **IDENTITY, "LC_ALL": "C"},
                capture_output=True,
                timeout=GIT_TIMEOUT,
            )
            if done.returncode != 0:
                files = run(repo, "diff", "--name-only", "--diff-filter=U", cwd=work, check=False)
                run(repo, "merge", "--abort", cwd=work, check=False)
                if files:
                    shown = ", ".join(files.splitlines()[:10])
                    raise errors.Conflict(
                        f"Merge conflict: {head} does not merge cleanly into {base} "
                        f"(conflicting: {shown}). Nothing was merged."
                    )
                text = (done.stdout + done.stderr).decode(errors="replace").strip()[-300:]
                raise errors.Conflict(f"Cannot merge {head} into {base}: {text}")
        finally:
            run(repo, "worktree", "remove", "--force", str(work), check=False)
            shutil.rmtree(work, ignore_errors=True)
            run(repo, "worktree", "prune", check=False)
        return sha_of(repo, base)


def commit_directory(repo: Path, source: Path, *, message: str, branches: tuple[str, ...]) -> str:
    """Commit every file under `source` on top of the first of `branches` and point all of
    them at that commit (seeding a new repository); the new sha. A temporary index keeps the
    repository's own state untouched."""
    with locked(repo), tempfile.TemporaryDirectory(prefix="aiw-seed-") as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        here = ("--git-dir", str(repo), "--work-tree", str(source))
        run(repo, *here, "add", "--all", cwd=source, env_extra=index)
        tree = run(repo, *here, "write-tree", cwd=source, env_extra=index)
        parent = sha_of(repo, branches[0])
        commit = run(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
        for branch in branches:
            run(repo, "update-ref", f"refs/heads/{branch}", commit)
        return commit


def tree_is_empty(repo: Path, branch: str) -> bool:
    """Whether `branch` holds no file (a repository the platform just created)."""
    return run(repo, "rev-parse", f"refs/heads/{branch}^{{tree}}", check=False) == EMPTY_TREE


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    done = subprocess.run(
        ["git", "--git-dir", str(repo), "merge-base", "--is-ancestor", older, newer],
        capture_output=True,
        timeout=GIT_TIMEOUT,
    )
    return done.returncode == 0


# --- reading a pull request's changes (the task page) -----------------------------------------
# Fixed argument lists, no shell, no user text on the command line but shas git itself gave
# (or that `rev-parse --verify` checked); a diff is read up to a byte limit, not into memory
# whole, so a pull request that adds a huge generated file cannot exhaust the web process.

DIFF_MAX_BYTES = 512_000
DIFF_MAX_LINES = 5_000
LOG_MAX_COMMITS = 250
NUMSTAT_MAX_FILES = 1_000
# Shared by the three readers: the same options give the same files in the same order.
DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "-M")


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: str  # ISO 8601, as git wrote it
    subject: str

    @property
    def short_sha(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class FileStat:
    path: str
    old_path: str  # the path before a rename, else ""
    added: int
    removed: int
    binary: bool


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "file" (headers), "hunk" (@@), "add", "del", "ctx", "note" (\ No newline…)
    text: str


@dataclass(frozen=True)
class Diff:
    lines: list[DiffLine]
    truncated: bool
    total_bytes: int  # what was read: the whole diff, or the limit plus one when truncated


def commit_sha(repo: Path, revision: str) -> str:
    """The commit `revision` names, or "" when it names none (e.g. a sha git no longer has)."""
    return run(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False)


def merge_base(repo: Path, one: str, other: str) -> str:
    """The best common ancestor of two commits, or "" when they share none."""
    return run(repo, "merge-base", one, other, check=False)


def log(repo: Path, *, base: str, head: str, limit: int = LOG_MAX_COMMITS) -> list[Commit]:
    """The commits `head` has that `base` lacks, oldest first; at most `limit` (+1, so the
    caller can tell there were more)."""
    listing = run(
        repo,
        "log",
        "--no-color",
        f"--max-count={limit + 1}",
        "--format=%H%x1f%an%x1f%aI%x1f%s%x1e",
        f"{base}..{head}",
    )
    commits = []
    for record in listing.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 4:
            commits.append(Commit(*fields))
    return commits[::-1]


def numstat(repo: Path, *, base: str, head: str, limit: int = NUMSTAT_MAX_FILES) -> list[FileStat]:
    """Per file, the lines added and removed between two commits; binary files say so."""
    out = run(
        repo, "-c", "core.quotePath=false", "diff", *DIFF_OPTIONS, "--numstat", "-z", base, head
    )
    # -z: "added\tremoved\tpath\0", or for a rename "added\tremoved\t\0old\0new\0".
    fields = out.split("\0")
    stats: list[FileStat] = []
    i = 0
    while i < len(fields) and len(stats) <= limit:
        counts = fields[i].split("\t")
        i += 1
        if len(counts) != 3:
            continue
        added, removed, path = counts
        old_path = ""
        if not path and i + 1 < len(fields):
            old_path, path = fields[i], fields[i + 1]
            i += 2
        binary = added == "-" and removed == "-"
        stats.append(
            FileStat(
                path=path,
                old_path=old_path,
                added=0 if binary else int(added),
                removed=0 if binary else int(removed),
                binary=binary,
            )
        )
    return stats


def diff(
    repo: Path,
    *,
    base: str,
    head: str,
    max_bytes: int = DIFF_MAX_BYTES,
    max_lines: int = DIFF_MAX_LINES,
) -> Diff:
    """The unified diff between two commits, its lines classified for display; cut at
    `max_bytes` or `max_lines`, whichever comes first (`truncated` then says so)."""
    command = ["git", "--git-dir", str(repo), "-c", "core.quotePath=false", "diff", *DIFF_OPTIONS]
    command += ["--patch", base, head]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    env.pop("AIWORKER_ALLOWED_REFS", None)
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env)
        # A reader that blocks on the pipe is still bounded in time: the timer ends git.
        timer = threading.Timer(GIT_TIMEOUT, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            raw = process.stdout.read(max_bytes + 1)
            process.stdout.close()  # git gets SIGPIPE if it had more to say
            code = process.wait()
        finally:
            timer.cancel()
        truncated = len(raw) > max_bytes
        if code != 0 and not truncated:
            stderr.seek(0)
            text = stderr.read().decode(errors="replace").strip()[-500:]
            raise GitFailed(f"git diff failed: {text or f'exit status {code}'}")
    text = raw[:max_bytes].decode(errors="replace")
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    if truncated and rows:
        rows.pop()  # the last line read is likely cut in the middle
    if len(rows) > max_lines:
        rows, truncated = rows[:max_lines], True
    return Diff(lines=classify(rows), truncated=truncated, total_bytes=len(raw))


def classify(rows: list[str]) -> list[DiffLine]:
    """Tag each line of a unified diff. Within a hunk the first character decides; a file's
    header lines (diff --git, index, ---, +++, mode, rename) are "file" ("Binary files … differ"
    is a "note"), so a removed line that reads "-- x" is not taken for a header."""
    lines = []
    in_hunk = False
    for row in rows:
        if row.startswith("diff --git "):
            in_hunk, kind = False, "file"
        elif row.startswith("@@"):
            in_hunk, kind = True, "hunk"
        elif not in_hunk:
            kind = "note" if row.startswith("Binary files ") else "file"
        elif row.startswith("+"):
            kind = "add"
        elif row.startswith("-"):
            kind = "del"
        elif row.startswith("\\"):
            kind = "note"
        else:
            kind = "ctx"
        lines.append(DiffLine(kind=kind, text=row))
    return lines
