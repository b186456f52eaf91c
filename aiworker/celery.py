"""Celery application. Job modules are named `jobs.py` because `tasks` is a domain app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiworker.settings")

app = Celery("aiworker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(related_name="jobs")
