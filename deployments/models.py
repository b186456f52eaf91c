from django.conf import settings
from django.db import models


class Environment(models.TextChoices):
    PREVIEW = "preview"
    STAGING = "staging"
    PRODUCTION = "production"


class Driver(models.TextChoices):
    KUBERNETES = "kubernetes"
    GITOPS = "gitops"
    LOCAL = "local"
    DISABLED = "disabled"


# What a person reads for a status: a pending row is waiting for its deploy job to start.
STEP_LABELS = {"pending": "queued"}


def step_label(status: str) -> str:
    return STEP_LABELS.get(status, status)


class Release(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DEPLOYING = "deploying"
        LIVE = "live"
        FAILED = "failed"
        SUPERSEDED = "superseded"
        ROLLED_BACK = "rolled_back"

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="releases"
    )
    environment = models.CharField(
        max_length=20,
        choices=[(Environment.STAGING, "staging"), (Environment.PRODUCTION, "production")],
    )
    tasks = models.ManyToManyField("tasks.Task", blank=True, related_name="releases")
    commit_sha = models.CharField(max_length=64, blank=True)
    image = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deployed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("promote_release", "Can promote a release to production and roll back")]

    def __str__(self) -> str:
        return f"{self.project} {self.environment} release {self.pk}"

    @property
    def step(self) -> str:
        return step_label(self.status)


class Deployment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DEPLOYING = "deploying"
        READY = "ready"
        FAILED = "failed"
        EXPIRED = "expired"
        DESTROYED = "destroyed"

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="deployments"
    )
    task = models.ForeignKey(
        "tasks.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="deployments"
    )
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="deployments"
    )
    environment = models.CharField(max_length=20, choices=Environment.choices)
    driver = models.CharField(max_length=20, choices=Driver.choices)
    namespace = models.CharField(max_length=63)
    url = models.URLField(max_length=500, blank=True)
    image = models.CharField(max_length=300, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    manifests = models.TextField(blank=True, help_text="The rendered YAML last applied.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.environment} {self.namespace} ({self.status})"

    @property
    def step(self) -> str:
        return step_label(self.status)
