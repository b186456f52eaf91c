from django.urls import path

from agents import apis

urlpatterns = [
    path("agents/", apis.AgentListCreateApi.as_view(), name="agent-list"),
    path("agents/<int:pk>/", apis.AgentDetailApi.as_view(), name="agent-detail"),
    path("agents/<int:pk>/revoke/", apis.AgentRevokeApi.as_view(), name="agent-revoke"),
    path("agents/pods/", apis.AgentPodCreateApi.as_view(), name="agent-pod-create"),
    path("agents/<int:pk>/pod/delete/", apis.AgentPodDeleteApi.as_view(), name="agent-pod-delete"),
]
