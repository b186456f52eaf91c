"""Periodic and background jobs of the tasks app (Celery)."""

from celery import shared_task

from tasks import services


@shared_task(name="tasks.jobs.release_expired_leases")
def release_expired_leases() -> int:
    return services.task_release_expired_leases()
