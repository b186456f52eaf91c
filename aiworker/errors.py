"""Domain errors. Each surface turns them into its own answer (DRF status, MCP tool error,
admin message); services raise them and never know which surface called."""

from collections.abc import Iterable


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"


class InvalidInput(DomainError):
    """Bad input. `fields` maps a field name to its messages, for surfaces that show them."""

    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class PermissionDenied(DomainError):
    code = "permission_denied"


class Conflict(DomainError):
    code = "conflict"


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"

    def __init__(
        self,
        *,
        task_id: int,
        from_state: str,
        to_state: str,
        allowed: Iterable[str],
        hint: str = "",
    ):
        self.task_id = task_id
        self.from_state = from_state
        self.to_state = to_state
        self.allowed = sorted(allowed)
        targets = ", ".join(self.allowed) or "none"
        # `hint` names what does make the move, e.g. "use Merge to staging".
        super().__init__(
            f"Task {task_id} cannot move from '{from_state}' to '{to_state}'. "
            + (f"{hint} " if hint else "")
            + f"Allowed from '{from_state}': {targets}."
        )


class TooManyWaits(DomainError):
    """An agent opened more waits than MCP_MAX_WAITS_PER_AGENT."""

    code = "too_many_waits"


class NotConfigured(DomainError):
    """An integration (Gitea, Kubernetes) is switched off by settings."""

    code = "not_configured"


class Unavailable(DomainError):
    """An outside system (Gitea, the cluster) timed out or failed: try again later."""

    code = "unavailable"
