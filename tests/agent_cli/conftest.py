"""The runner with each agent CLI's launch profile; the e2e fixtures (MCP server, Gitea behind
Prism, the project's bare repository, the runner subprocess) are shared with tests/e2e."""

from tests.e2e.conftest import (  # noqa: F401  (fixtures, hook)
    OWNER,
    REPO,
    _eager_jobs_and_fresh_throttle,
    _gitea_servers,
    gitea,
    mcp_url,
    mirror_pushes,
    project_repo,
    pytest_configure,
    start_runner,
)
