from django.urls import path

from deployments import views

urlpatterns = [
    path("projects/<slug:slug>/deployments/", views.deployments_page, name="deployments-page"),
    path(
        "projects/<slug:slug>/deployments/<int:deployment_id>/extend/",
        views.extend,
        name="deployments-extend",
    ),
    path(
        "projects/<slug:slug>/releases/<int:release_id>/rollback/",
        views.rollback,
        name="deployments-rollback",
    ),
]
