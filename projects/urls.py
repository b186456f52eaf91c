from django.urls import path

from projects import apis
from projects.forges import gitea_apis

urlpatterns = [
    path("projects/", apis.ProjectListCreateApi.as_view(), name="project-list"),
    path("projects/<int:pk>/", apis.ProjectDetailApi.as_view(), name="project-detail"),
    path(
        "projects/<int:pk>/connect-gitea/",
        gitea_apis.ProjectConnectGiteaApi.as_view(),
        name="project-connect-gitea",
    ),
]
