"""WebSocket routes of every app."""

from django.urls import path

from tasks.consumers import BoardConsumer

websocket_urlpatterns: list = [
    path("ws/projects/<slug:slug>/board/", BoardConsumer.as_asgi()),
]
