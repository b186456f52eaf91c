"""Who did something: recorded on every TaskEvent and used for permission checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    kind: str  # one of TaskEvent.ActorKind
    user: Any = None  # an auth user, for kind "user"
    agent: Any = None  # an agents.Agent (this floor does not import the agents app)
    label: str = ""

    @classmethod
    def of_user(cls, user: Any) -> Actor:
        return cls(kind="user", user=user, label=user.get_username())

    @classmethod
    def of_agent(cls, agent: Any) -> Actor:
        return cls(kind="agent", agent=agent, label=agent.name)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind="system", label=label)

    @classmethod
    def webhook(cls, label: str = "gitea") -> Actor:
        return cls(kind="webhook", label=label)

    def has_perm(self, perm: str, project: Any = None) -> bool:
        """A global permission, or (given the project) the per-project one from its roles."""
        # The system (beat jobs, the merge flow it was asked to run) acts on a person's behalf.
        if self.kind == "system":
            return True
        if self.kind == "agent" and self.agent is not None:
            # An agent answers for itself (agents.models.Agent.has_perm, from projects.roles).
            return project is not None and bool(self.agent.has_perm(perm, project))
        if self.kind != "user" or not self.user:
            return False
        if project is None:
            return bool(self.user.has_perm(perm))
        return bool(self.user.has_perm(perm, project))

    @property
    def event_fields(self) -> dict[str, Any]:
        return {"actor_kind": self.kind, "actor_user": self.user, "actor_agent": self.agent}
