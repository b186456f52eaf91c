from django.urls import path

from projects import apis
from projects.forges import gitea_apis
from projects.forges import gitea_webhooks as webhooks

urlpatterns = [
    path("projects/", apis.ProjectListCreateApi.as_view(), name="project-list"),
    path("projects/<int:pk>/", apis.ProjectDetailApi.as_view(), name="project-detail"),
    path(
        "projects/<int:pk>/connect-gitea/",
        gitea_apis.ProjectConnectGiteaApi.as_view(),
        name="project-connect-gitea",
    ),
    path("webhooks/gitea/", webhooks.GiteaWebhookView.as_view(), name="webhook-gitea"),
]
