"""Deployment drivers behind one interface; `get_driver()` picks one from settings."""

from deployments.drivers.base import DeployFailed, Driver, ManagedResource, get_driver

__all__ = ["DeployFailed", "Driver", "ManagedResource", "get_driver"]
