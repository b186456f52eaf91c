from django.urls import path

from deployments import apis, release_apis

urlpatterns: list = [
    path("deployments/", apis.DeploymentListApi.as_view(), name="deployment-list"),
    path("deployments/<int:pk>/", apis.DeploymentDetailApi.as_view(), name="deployment-detail"),
    path(
        "deployments/<int:pk>/extend/",
        apis.DeploymentExtendApi.as_view(),
        name="deployment-extend",
    ),
    path(
        "tasks/<int:pk>/deploy-preview/",
        apis.TaskDeployPreviewApi.as_view(),
        name="task-deploy-preview",
    ),
    path("releases/", apis.ReleaseListApi.as_view(), name="release-list"),
    path(
        "releases/<int:pk>/rollback/",
        apis.ReleaseRollbackApi.as_view(),
        name="release-rollback",
    ),
    path(
        "releases/merge-to-staging/",
        release_apis.MergeToStagingApi.as_view(),
        name="release-merge-to-staging",
    ),
    path(
        "releases/<int:pk>/promote/",
        release_apis.PromoteReleaseApi.as_view(),
        name="release-promote",
    ),
]
