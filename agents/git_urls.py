"""/git/<slug>.git/…: the local forge's repositories over git's smart HTTP."""

from django.urls import re_path

from agents import git_http

urlpatterns = [
    re_path(r"^(?P<slug>[-\w]+)\.git/(?P<path>.*)$", git_http.git_http, name="git-http"),
]
