import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def generate_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    gitea_owner = models.CharField(max_length=100, blank=True)
    gitea_repo = models.CharField(max_length=100, blank=True)
    default_branch = models.CharField(max_length=100, default="main")
    staging_branch = models.CharField(max_length=100, default="staging")
    production_branch = models.CharField(max_length=100, default="production")
    image_repository = models.CharField(
        max_length=255, blank=True, help_text="Image built from each commit, tagged with its sha."
    )
    preview_port = models.PositiveIntegerField(
        default=8000, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    preview_env = models.JSONField(
        default=dict, blank=True, help_text="Non-secret environment variables for previews."
    )
    wip_limits = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per column, e.g. {"in_progress": 5}. Absent = no limit.',
    )
    max_concurrent_agents = models.PositiveIntegerField(default=3)
    # Needed in clear to compute the HMAC of each delivery; never rendered on a page or in the API.
    webhook_secret = models.CharField(max_length=100, default=generate_webhook_secret)
    gitea_webhook_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_repository(self) -> bool:
        return bool(self.gitea_owner and self.gitea_repo)

    def wip_limit(self, state: str) -> int | None:
        value = (self.wip_limits or {}).get(state)
        if value is None or value == "":
            return None
        return int(value)


class WebhookDelivery(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "pending"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    delivery_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=60)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"


class Membership(models.Model):
    """A person's role in one project: what projects/roles.py grants them there."""

    class Role(models.TextChoices):
        # Ordered: each role includes everything the ones before it may do.
        VIEWER = "viewer", "viewer"
        MEMBER = "member", "member"
        REVIEWER = "reviewer", "reviewer"
        RELEASER = "releaser", "releaser"
        ADMIN = "admin", "admin"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_one_per_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=["viewer", "member", "reviewer", "releaser", "admin"]),
                name="membership_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project.slug}: {self.role}"
