"""Preview rendering and gitops commits, each beside its floor measured in the same run:
- render: building and serialising a preview's seven objects vs only serialising them;
- commit: the gitops driver's apply (fresh clone, index update, commit, push, under its lock)
  vs a bare `git add && git commit && git push` of the same files in a clone kept open.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from deployments import manifests as m
from deployments.drivers.base import Place
from deployments.drivers.gitops import GitOpsDriver
from tests.bench.table import Row, ratio

RENDERS = 500
COMMITS = 30


def _target(n: int) -> m.Target:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return m.Target(
        namespace=f"preview-task-{n}",
        host=f"task-{n}.preview.example.test",
        image=f"registry.example.test/acme/shop:{n:040x}",
        port=8000,
        environment="preview",
        project_slug="acme",
        project_id=1,
        task_id=n,
        deployed_at=now,
        expires_at=now + timedelta(days=7),
        env={"A": "1", "B": "2"},
    )


def _per_op(fn, count: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def run() -> list[Row]:
    rows = []
    docs = m.render(_target(1))
    render_p50, _ = _per_op(lambda i: m.to_yaml(m.render(_target(i))), RENDERS)
    dump_p50, _ = _per_op(lambda i: m.to_yaml(docs), RENDERS)
    rows.append(
        Row(
            name=f"preview render + YAML, median of {RENDERS}",
            ours=f"{render_p50 * 1000:.2f} ms",
            limit=f"{dump_p50 * 1000:.2f} ms (YAML dump only)",
            ratio=ratio(render_p50, dump_p50),
            target="<= 1.5x: " + ("met" if render_p50 <= 1.5 * dump_p50 else "not met"),
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        driver = GitOpsDriver(str(Path(tmp) / "ours.git"))
        place = Place("preview", "preview-task-1", "acme")
        ours_p50, ours_p95 = _per_op(
            lambda i: driver.apply(place, m.render(_target(1000 + i))), COMMITS
        )

        bare = Path(tmp) / "bare.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        work = Path(tmp) / "work"
        subprocess.run(
            ["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True
        )
        _git(work, "checkout", "-q", "-b", "main")

        def bare_commit(i: int) -> None:
            target = work / "preview" / "preview-task-1"
            target.mkdir(parents=True, exist_ok=True)
            for n, doc in enumerate(m.render(_target(2000 + i))):
                (target / m.file_name(n, doc)).write_text(yaml.safe_dump(doc, sort_keys=True))
            _git(work, "add", "--all")
            _git(work, "commit", "-q", "-m", f"bench {i}")
            _git(work, "push", "-q", "origin", "HEAD:refs/heads/main")

        base_p50, base_p95 = _per_op(bare_commit, COMMITS)
    rows.append(
        Row(
            name=f"gitops preview commit+push, median of {COMMITS}",
            ours=f"{ours_p50 * 1000:.0f} ms (p95 {ours_p95 * 1000:.0f})",
            limit=f"{base_p50 * 1000:.0f} ms (p95 {base_p95 * 1000:.0f}) bare git add/commit/push",
            ratio=ratio(ours_p50, base_p50),
            target="<= 3x: " + ("met" if ours_p50 <= 3 * base_p50 else "not met"),
        )
    )
    return rows
