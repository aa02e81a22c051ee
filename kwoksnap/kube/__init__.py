"""The only package that talks to a Kubernetes API server.

Why it exists: configuration, authentication and discovery come from the ``kubernetes`` client (it knows every
kubeconfig quirk); every request on a hot path goes through :class:`~kwoksnap.kube.client.Client`, a raw socket +
orjson client that never builds model objects. Nothing outside ``kube`` imports ``kubernetes``.
"""

from kwoksnap.kube.client import Client, RetryPolicy
from kwoksnap.kube.config import ClusterConfig, load_config

__all__ = ["Client", "ClusterConfig", "RetryPolicy", "load_config"]
