"""/git/<slug>.git/…: the local forge's repositories over git's smart HTTP."""

from django.urls import re_path

from projects.forges import local_http

urlpatterns = [
    re_path(r"^(?P<slug>[-\w]+)\.git/(?P<path>.*)$", local_http.git_http, name="git-http"),
]
