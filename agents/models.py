from django.db import models


class AgentKind(models.TextChoices):
    CLAUDE_CODE = "claude-code", "Claude Code"
    CODEX = "codex", "Codex"
    OPENCODE = "opencode", "OpenCode"
    OTHER = "other", "Other CLI agent"


class AgentStatus(models.TextChoices):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    ERROR = "error"
    OFFLINE = "offline"


class Agent(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=AgentKind.choices, default=AgentKind.CLAUDE_CODE)
    status = models.CharField(
        max_length=10, choices=AgentStatus.choices, default=AgentStatus.STARTING, db_index=True
    )
    status_message = models.CharField(max_length=500, blank=True)
    pod_name = models.CharField(max_length=253, blank=True)
    pod_namespace = models.CharField(max_length=63, blank=True)
    current_task = models.ForeignKey(
        "tasks.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    capabilities = models.JSONField(default=list, blank=True)
    # SHA-256 of a 256-bit random token: enough against offline guessing, and lookup is one
    # indexed equality. The token itself is shown once, when the agent is created.
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=8, blank=True, help_text="To recognise a token.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    project = models.ForeignKey(
        "projects.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="agents",
        help_text="When set, the agent works only on this project.",
    )
    can_plan = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """The roles' question for an agent (projects/roles.agent_has_perm): a planner is a
        member for planning within its project restriction; otherwise nothing."""
        from projects import roles

        return roles.agent_has_perm(self, perm, obj)


class AgentMcpCall(models.Model):
    """An agent's calls of one MCP tool, made by its agent CLI (the runner's own are not
    counted): the runner compares the total before and after the CLI ran to tell a CLI that
    never reached the platform (wrong MCP configuration or token) from one that worked."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="mcp_calls")
    tool = models.CharField(max_length=64)
    calls = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0, help_text="Calls answered with an error.")
    last_error_code = models.CharField(max_length=40, blank=True)
    last_client = models.CharField(
        max_length=200, blank=True, help_text="The User-Agent of the last call (HTTP)."
    )
    first_at = models.DateTimeField(auto_now_add=True)
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["agent", "tool"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "tool"], name="agent_mcp_call_unique_tool")
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.tool} x{self.calls}"
