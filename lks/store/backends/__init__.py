"""Built-in store backends; importing this package registers their URL schemes."""

from lks.store.backends import etcd, memory, sqlite  # noqa: F401
