# The platform image: web (daphne), MCP server, Celery worker and beat all run from it; the
# k8s/ Deployments pick the command. Build from the repository root:
#   docker build -t registry.example.com/aiworker/platform:<version> .
# (Not built on the development machine: it has no container engine.)
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev \
 && rm -rf /var/lib/apt/lists/*
# Runtime packages only (no test tooling); `make lock` writes both lock files.
COPY requirements-runtime.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.lock

FROM python:3.11-slim
# git: the gitops driver commits through the git CLI. libmariadb3: mysqlclient at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git libmariadb3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 aiworker \
 && useradd --uid 10001 --gid 10001 --home-dir /home/aiworker --create-home aiworker
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIWORKER_VAR_DIR=/var/lib/aiworker \
    HOME=/home/aiworker
WORKDIR /app
COPY --chown=10001:10001 . /app
# /var/lib/aiworker holds only lock files and scratch space (an emptyDir in k8s/). Static files
# are collected into the image and served by WhiteNoise from daphne.
ENV STATIC_ROOT=/app/staticfiles
RUN DJANGO_SETTINGS_MODULE=aiworker.settings SECRET_KEY=collectstatic-only AIWORKER_ENV=production \
    python manage.py collectstatic --noinput \
 && mkdir -p /var/lib/aiworker && chown 10001:10001 /var/lib/aiworker
USER 10001:10001
EXPOSE 8000 3100
CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "--proxy-headers", "aiworker.asgi:application"]
