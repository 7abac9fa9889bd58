"""The HTTP lookup service (`hwface serve`): :func:`create_app` and :func:`serve`."""

from hwface.service.app import MAX_BODY_BYTES, MAX_KEYS, MAX_NETWORKS, create_app
from hwface.service.server import is_loopback, serve

__all__ = ["MAX_BODY_BYTES", "MAX_KEYS", "MAX_NETWORKS", "create_app", "is_loopback", "serve"]
