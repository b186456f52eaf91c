from django.urls import path

from tasks import apis, gitea_webhooks

urlpatterns = [
    path("tasks/", apis.TaskListCreateApi.as_view(), name="task-list"),
    path("tasks/<int:pk>/", apis.TaskDetailApi.as_view(), name="task-detail"),
    path("tasks/<int:pk>/transition/", apis.TaskTransitionApi.as_view(), name="task-transition"),
    path("tasks/<int:pk>/questions/", apis.TaskQuestionsApi.as_view(), name="task-questions"),
    path(
        "tasks/<int:pk>/questions/<int:qid>/answer/",
        apis.QuestionAnswerApi.as_view(),
        name="task-question-answer",
    ),
    path("tasks/<int:pk>/approve/", apis.TaskApproveApi.as_view(), name="task-approve"),
    path(
        "tasks/<int:pk>/request-changes/",
        apis.TaskRequestChangesApi.as_view(),
        name="task-request-changes",
    ),
    path(
        "tasks/<int:pk>/dependencies/",
        apis.TaskDependenciesApi.as_view(),
        name="task-dependencies",
    ),
    path("tasks/<int:pk>/events/", apis.TaskEventsApi.as_view(), name="task-events"),
    path("webhooks/gitea/", gitea_webhooks.GiteaWebhookView.as_view(), name="webhook-gitea"),
]
