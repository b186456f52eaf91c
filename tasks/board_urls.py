"""The board's pages, mounted at the site root ("/" is the projects page).

Not namespaced, because settings name the login page "login"; the other names start with
"board" so they never meet the REST API's router names."""

from django.contrib.auth import views as auth_views
from django.urls import path

from projects.views import project_charts, project_list
from tasks import pull_request_views, views

urlpatterns = [
    path("", project_list, name="projects"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/<slug:slug>/board/", views.board, name="board"),
    path("projects/<slug:slug>/charts/", project_charts, name="project-charts"),
    path("projects/<slug:slug>/board/cards/<int:task_id>/", views.card, name="board-card"),
    path(
        "projects/<slug:slug>/board/columns/<str:state>/",
        views.column_more,
        name="board-column-more",
    ),
    path("projects/<slug:slug>/tasks/new/", views.task_create, name="board-task-create"),
    path("projects/<slug:slug>/tasks/<int:task_id>/", views.task_detail, name="board-task"),
    path("projects/<slug:slug>/tasks/<int:task_id>/edit/", views.task_edit, name="board-task-edit"),
    path("projects/<slug:slug>/tasks/<int:task_id>/move/", views.move, name="board-move"),
    path(
        "projects/<slug:slug>/tasks/<int:task_id>/questions/<int:question_id>/answer/",
        views.question_answer,
        name="board-answer",
    ),
    path(
        "projects/<slug:slug>/tasks/<int:task_id>/pull-request/review/",
        pull_request_views.review,
        name="board-pull-request-review",
    ),
    path(
        "projects/<slug:slug>/pulls/<int:number>/",
        pull_request_views.pull_request,
        name="board-pull-request",
    ),
    path(
        "projects/<slug:slug>/tasks/<int:task_id>/dependencies/",
        views.task_dependencies,
        name="board-task-dependencies",
    ),
    path(
        "projects/<slug:slug>/tasks/<int:task_id>/<str:action>/",
        views.task_action,
        name="board-task-action",
    ),
]
