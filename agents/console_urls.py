"""The agent console's pages, mounted at /agents/ (the REST routes live in agents/urls.py)."""

from django.urls import path

from agents import views

urlpatterns = [
    path("", views.console, name="agents-console"),
    path("<int:agent_id>/log/", views.pod_log, name="agents-pod-log"),
]
