import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models


def generate_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def default_forge() -> str:
    """Gitea when the platform has one, else the platform's own local forge."""
    return Project.Forge.GITEA if settings.GITEA_URL else Project.Forge.LOCAL


def default_deploy_driver() -> str:
    """With no Gitea the project runs locally too; else the DEPLOY_DRIVER setting decides."""
    return Project.DeployDriver.SETTING if settings.GITEA_URL else Project.DeployDriver.LOCAL


class Project(models.Model):
    class Forge(models.TextChoices):
        GITEA = "gitea", "Gitea"
        LOCAL = "local", "Local (a bare repository served by the platform)"

    class DeployDriver(models.TextChoices):
        SETTING = "", "The DEPLOY_DRIVER setting"
        KUBERNETES = "kubernetes", "Kubernetes"
        GITOPS = "gitops", "GitOps (Argo CD)"
        LOCAL = "local", "Local (the run command on a loopback port)"
        DISABLED = "disabled", "Disabled"

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
    forge = models.CharField(
        max_length=20,
        choices=Forge.choices,
        default=default_forge,
        help_text="Where the repository, pull requests and merges live.",
    )
    deploy_driver = models.CharField(
        max_length=20,
        choices=DeployDriver.choices,
        default=default_deploy_driver,
        blank=True,
        help_text="How previews, staging and production are deployed.",
    )
    # The local forge and the local deploy driver.
    local_repo_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="Bare repository of the local forge: an existing path, or empty for "
        "var/repos/<slug>.git (created by the platform).",
    )
    run_command = models.CharField(
        max_length=500,
        blank=True,
        default="python -m http.server {port}",
        help_text="Local driver: started in a worktree of the commit; {port} (also $PORT) is "
        "the free loopback port it must listen on.",
    )
    health_path = models.CharField(
        max_length=200,
        default="/",
        validators=[RegexValidator(r"^/[^\s]*$", "A path starting with /.")],
        help_text="Local driver: ready once http://127.0.0.1:<port><path> answers below 500.",
    )
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
    # What the event is about, read from the signed body (a comment's id, a push's ref and
    # shas, …): a replay under a new delivery id has the same key and no second effect.
    event_key = models.CharField(max_length=200, null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["project", "event_key"], name="webhook_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id}"


class PullRequest(models.Model):
    """A pull request of the local forge: the platform keeps it, as Gitea keeps its own."""

    class State(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"
        MERGED = "merged"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pull_requests")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    head_ref = models.CharField(max_length=255)
    base_ref = models.CharField(max_length=100)
    head_sha = models.CharField(max_length=64, blank=True)
    # Where the base stood when the PR merged: its diff stays readable afterwards.
    base_sha = models.CharField(max_length=64, blank=True)
    merge_commit_sha = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    merged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="pull_request_number_once")
        ]
        indexes = [models.Index(fields=["project", "head_ref", "state"])]

    def __str__(self) -> str:
        return f"{self.project.slug} #{self.number}"


class PullRequestComment(models.Model):
    """What people (and the platform) said on a local pull request."""

    class Kind(models.TextChoices):
        COMMENT = "comment"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        PLATFORM = "platform"

    pull_request = models.ForeignKey(PullRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.COMMENT)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment {self.pk} on {self.pull_request}"


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


class ApiToken(models.Model):
    """A person's REST API token (projects/api_tokens.py): only its SHA-256 is kept.

    The token is shown once, when it is made; `prefix` (its visible start) is what lists and
    the admin show to recognise it. A read token may only do safe methods (GET, HEAD, OPTIONS).
    """

    class Scope(models.TextChoices):
        READ = "read", "read (GET only)"
        WRITE = "write", "read and write"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'CI'.")
    prefix = models.CharField(max_length=16, help_text="The token's visible start.")
    key_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope__in=["read", "write"]), name="api_token_scope_known"
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"
