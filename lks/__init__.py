"""lks: a self-hosted managed Kubernetes service that behaves like Azure Kubernetes Service."""

__version__ = "0.1.0"
