"""The interface every forge implements: what the services need from where the code lives.

A forge is bound to one project (`get_forge(project)` in projects/forges/__init__.py). Its
methods raise domain errors (aiworker/errors.py): NotConfigured when the forge cannot be used,
Conflict for a merge conflict or a closed pull request, Unavailable for "try again later".
Every method may be called again after a timeout: a retry finds what the first call made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PullRequest:
    """A pull request as the services see it, whichever forge keeps it."""

    number: int
    state: str  # "open" or "closed"
    merged: bool
    html_url: str
    head_ref: str
    head_sha: str
    base_ref: str
    merge_commit_sha: str


class Forge(Protocol):
    name: str

    def clone_url(self) -> str | None:
        """Where the agent clones from and pushes to; None when the project has no repository."""

    def ensure_repository(self) -> None:
        """Make sure the repository and the flow's branches (staging, production) exist."""

    def create_branch(self, *, name: str, base: str) -> bool:
        """Create branch `name` at `base`'s head; True if created, False if it existed."""

    def find_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        """The open pull request from `head` into `base`, if any."""

    def open_pull_request(
        self, *, head: str, base: str, title: str, body: str
    ) -> tuple[PullRequest, bool]:
        """The open PR `head` -> `base`, opened now (True) or found open already (False)."""

    def get_pull_request(self, *, number: int) -> PullRequest:
        """The pull request `number` (NotFound when there is none)."""

    def merge_pull_request(self, *, number: int, message: str) -> PullRequest:
        """Merge the PR into its base (merged already is fine); the merged PR. Conflict when
        it cannot be merged, and then nothing changed."""

    def bring_up_to_date(self, *, head: str, base: str, title: str) -> str:
        """Merge `head` into `base` (nothing to bring is fine); the new head sha of `base`."""

    def comment(self, *, number: int, body: str) -> None:
        """Say something on the PR, as the platform."""
