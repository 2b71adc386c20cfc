"""``relaax-zmq deploy k8s``: a container image recipe and Kubernetes manifests made from an app
file, so that endpoints and ports agree with its config (docs/kubernetes.md).

``cluster`` rewrites the app for the cluster (endpoints on Service names), ``kubernetes``
builds the objects as plain dicts, ``image`` the Dockerfile and its build context.
"""

from relaax_zmq.deploy.cluster import NAMES, cluster_app
from relaax_zmq.deploy.image import dockerfile, write_context
from relaax_zmq.deploy.kubernetes import manifests

__all__ = ["NAMES", "cluster_app", "dockerfile", "manifests", "write_context"]
