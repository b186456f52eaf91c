from django.conf import settings
from django.db import models

from tasks.states import ACTIVE_STATES, TaskState


def labels_of(stored: str) -> list[str]:
    """The labels of a task's `labels` column (",bug,ui," -> ["bug", "ui"])."""
    return [label for label in stored.split(",") if label]


class Priority(models.IntegerChoices):
    LOW = 0, "Low"
    MEDIUM = 1, "Medium"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class Complexity(models.TextChoices):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class Task(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    state = models.CharField(
        max_length=20, choices=TaskState.choices, default=TaskState.BACKLOG, db_index=True
    )
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    # Lowercase labels, each between commas (",bug,ui,"), written by tasks.services'
    # clean_labels: a label filter is one LIKE on every database (SQLite has no JSON
    # containment), and the board reads them with the card's row (no extra query).
    labels = models.CharField(max_length=400, blank=True, default="")
    position = models.IntegerField(default=0, help_text="Order within its column; lower first.")
    assigned_agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    branch_name = models.CharField(max_length=200, blank=True)
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    pr_url = models.URLField(max_length=500, blank=True)
    head_sha = models.CharField(max_length=64, blank=True)
    preview_url = models.URLField(max_length=500, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="subtasks"
    )
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )
    attempt_count = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)

    # Optional specification, written by a planning agent or a person.
    spec_goals = models.TextField(blank=True)
    spec_context = models.TextField(blank=True)
    spec_architecture = models.TextField(blank=True)
    spec_edge_cases = models.TextField(blank=True)
    spec_acceptance_criteria = models.TextField(blank=True)
    spec_complexity = models.CharField(max_length=10, choices=Complexity.choices, blank=True)

    class Meta:
        ordering = ["project_id", "state", "-priority", "position", "created_at", "id"]
        permissions = [("approve_task", "Can approve a task that is ready to test")]
        indexes = [
            # Claim order within a column (CARD_ORDER, the claim's ORDER BY): a column's first
            # page, the next page after a card, and the claim read it in order and stop after
            # their LIMIT, so their cost does not grow with the column (docs/PERFORMANCE.md).
            models.Index(
                fields=["project", "state", "-priority", "position", "created_at", "id"],
                name="task_board_order",
            ),
            # The board's agent filter asks, per agent, whether it has a card in the project:
            # one seek here. Without it SQLite read every task of the project once per agent
            # (100 ms for 20 agents and 20,000 tasks).
            models.Index(fields=["project", "assigned_agent"], name="task_project_agent"),
        ]
        # The database refuses what the choices refuse: a row written past the services (a
        # raw UPDATE, a bad fixture) cannot hold a value a claim would then fail to read.
        constraints = [
            models.CheckConstraint(
                condition=models.Q(priority__in=Priority.values), name="task_priority_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=TaskState.values), name="task_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def label_list(self) -> list[str]:
        return labels_of(self.labels)

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def has_specification(self) -> bool:
        return any(
            [
                self.spec_goals,
                self.spec_context,
                self.spec_architecture,
                self.spec_edge_cases,
                self.spec_acceptance_criteria,
                self.spec_complexity,
            ]
        )


class TaskQuestion(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="questions")
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="questions"
    )
    question = models.TextField()
    options = models.JSONField(default=list, blank=True)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    asked_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asked_at", "id"]

    def __str__(self) -> str:
        return f"Q{self.pk} on task {self.task_id}"

    @property
    def is_open(self) -> bool:
        return self.answered_at is None


class TaskFeedback(models.Model):
    """Review comments and change requests the agent has still to read (`get_feedback`)."""

    class Source(models.TextChoices):
        PERSON = "person"
        GITEA_REVIEW = "gitea_review"
        GITEA_COMMENT = "gitea_comment"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="feedback")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PERSON)
    author = models.CharField(max_length=150, blank=True)
    body = models.TextField()
    # Gitea's comment or review id; NULL for feedback given on the board. NULL rather than ""
    # because MariaDB has no partial unique index and NULLs never collide.
    external_id = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "task feedback"
        constraints = [
            models.UniqueConstraint(
                fields=["task", "source", "external_id"], name="feedback_external_id_once"
            )
        ]

    def __str__(self) -> str:
        return f"Feedback {self.pk} on task {self.task_id}"


class TaskEvent(models.Model):
    """The audit log: every state change and every external effect writes one."""

    class ActorKind(models.TextChoices):
        USER = "user"
        AGENT = "agent"
        WEBHOOK = "webhook"
        SYSTEM = "system"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40, db_index=True)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on task {self.task_id}"
