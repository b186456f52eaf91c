"""Deployment drivers behind one interface; `driver_for(project)` picks the project's own,
`get_driver()` the one the DEPLOY_DRIVER setting names."""

from deployments.drivers.base import DeployFailed, Driver, ManagedResource, driver_for, get_driver

__all__ = ["DeployFailed", "Driver", "ManagedResource", "driver_for", "get_driver"]
