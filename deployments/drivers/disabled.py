"""The driver used when deployments are switched off (DEPLOY_DRIVER=disabled)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from aiworker import errors
from deployments.drivers.base import ManagedResource, Place

MESSAGE = (
    "Deployments are switched off (DEPLOY_DRIVER=disabled). "
    "Set DEPLOY_DRIVER to gitops or kubernetes, or the project's deploy driver to local, "
    "to deploy previews and releases."
)


class DisabledDriver:
    name = "disabled"
    needs_image = False

    @classmethod
    def from_settings(cls) -> DisabledDriver:
        return cls()

    def _refuse(self) -> NoReturn:
        raise errors.NotConfigured(MESSAGE)

    def apply(self, place: Place, manifests: list[dict[str, Any]]) -> None:
        self._refuse()

    def destroy(self, places: Iterable[Place]) -> None:
        self._refuse()

    def status(self, place: Place) -> str:
        self._refuse()

    def list_managed(self) -> list[ManagedResource]:
        self._refuse()

    def remove_managed(self, resources: Iterable[ManagedResource]) -> None:
        self._refuse()
