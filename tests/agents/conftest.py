import pytest

from tests.agents.kube_standin import KubeStandIn

NAMESPACE = "aiworker-agents"


@pytest.fixture
def kube(settings, tmp_path):
    """Agent pods switched on against the stand-in Kubernetes API server."""
    with KubeStandIn() as standin:
        settings.AGENT_POD_NAMESPACE = NAMESPACE
        settings.KUBECONFIG = str(standin.write_kubeconfig(tmp_path / "kubeconfig"))
        yield standin
