"""What the Process runtime (`lks.nodes.process`) knows of the common public images it never
pulls: each one's configuration as its Dockerfile sets it (ENTRYPOINT, CMD, WORKDIR, ENV) and
the commands it provides, mapped to what runs them on this host; with it, Kubernetes' rules for
`command` and `args` give the argv a container would run.

The rules (kubelet, `kuberuntime.makeCommand` and containerd): `command` given replaces the
image's ENTRYPOINT and its CMD is ignored (`args`, if given, follow it); only `args` runs the
ENTRYPOINT with them; neither runs ENTRYPOINT + CMD. The environment is the image's ENV with
the container's (`lks.nodes.podenv`) over it; the working directory is `workingDir`, else the
image's WORKDIR.

A command an image provides (`python` in `python`, `nginx` in `nginx` ...) runs as the host's
program of that name, found on the service's PATH, since the image's directories
(`/usr/local/bin` ...) are not there; one the host lacks is a `CreateContainerError` saying
what to install. An image's entrypoint script that only prepares and then runs its arguments
(`docker-entrypoint.sh`) is skipped, adding the image's server first when the arguments start
with a flag, as the script does. An image not listed here has no known configuration: its
containers need a `command`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lks.nodes import podenv

PATH = podenv.DEFAULT_PATH  # what every image's ENV sets PATH from


@dataclass(frozen=True)
class Image:
    """One image's configuration; `commands` maps a program the image has to the host argv
    that runs it (first the host program's name), `wrappers` an entrypoint script that runs
    its arguments to the command it puts first when they start with a flag ("" none)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    env: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({"PATH": PATH}))
    commands: MappingProxyType[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    wrappers: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _image(*, env: dict[str, str] | None = None, commands: dict[str, tuple[str, ...]] | None = None,
           wrappers: dict[str, str] | None = None, **kw: Any) -> Image:
    return Image(env=MappingProxyType({"PATH": PATH, **(env or {})}), commands=MappingProxyType(commands or {}),
                 wrappers=MappingProxyType(wrappers or {}), **kw)


_PYTHON = {name: ("python3",) for name in ("python", "python3", "python3.13")} | {
    "pip": ("pip3",), "pip3": ("pip3",), "pydoc": ("pydoc3",), "pydoc3": ("pydoc3",)}
_NODE = {"node": ("node",), "nodejs": ("node",), "npm": ("npm",), "npx": ("npx",), "yarn": ("yarn",),
         "corepack": ("corepack",)}
_POSTGRES = {name: (name,) for name in ("postgres", "psql", "initdb", "pg_ctl", "pg_dump", "pg_restore",
                                         "pg_isready", "createdb", "dropdb")}
_JAVA = {name: (name,) for name in ("java", "javac", "jar", "jshell", "keytool")}

# By repository as containerd normalizes it (`lks.nodes.runtime.normalize_image`); the values are
# those of the images' current Dockerfiles (docker-library, nginx, nodejs, eclipse-temurin).
IMAGES: MappingProxyType[str, Image] = MappingProxyType({
    "docker.io/library/busybox": _image(cmd=("sh",)),
    "docker.io/library/alpine": _image(cmd=("/bin/sh",)),
    "docker.io/library/debian": _image(cmd=("bash",)),
    "docker.io/library/ubuntu": _image(cmd=("/bin/bash",)),
    "docker.io/library/fedora": _image(cmd=("/bin/bash",), env={"DISTTAG": "f42container", "FGC": "f42",
                                                               "container": "oci"}),
    "docker.io/library/python": _image(
        cmd=("python3",), commands=_PYTHON,
        env={"PATH": f"/usr/local/bin:{PATH}", "GPG_KEY": "7169605F62C751356D054A26A821E680E5FA6305",
             "PYTHON_VERSION": "3.13.11",
             "PYTHON_SHA256": "16ede7bb7cdbfa895d11b0642fa0e523f291e6487194d53cf6d3b338c3a17ea2"}),
    "docker.io/library/node": _image(
        entrypoint=("docker-entrypoint.sh",), cmd=("node",), commands=_NODE,
        wrappers={"docker-entrypoint.sh": "node"}, env={"NODE_VERSION": "22.22.1", "YARN_VERSION": "1.22.22"}),
    "docker.io/library/golang": _image(
        cmd=("bash",), workdir="/go", commands={"go": ("go",), "gofmt": ("gofmt",)},
        env={"PATH": f"/go/bin:/usr/local/go/bin:{PATH}", "GOLANG_VERSION": "1.24.8", "GOTOOLCHAIN": "local",
             "GOPATH": "/go"}),
    "docker.io/library/nginx": _image(
        entrypoint=("/docker-entrypoint.sh",), cmd=("nginx", "-g", "daemon off;"),
        commands={"nginx": ("nginx",), "nginx-debug": ("nginx",)}, wrappers={"docker-entrypoint.sh": ""},
        env={"NGINX_VERSION": "1.29.8", "NJS_VERSION": "0.9.6", "NJS_RELEASE": "1~trixie",
             "ACME_VERSION": "0.3.1", "PKG_RELEASE": "1~trixie", "DYNPKG_RELEASE": "1~trixie"}),
    "docker.io/library/httpd": _image(
        cmd=("httpd-foreground",), workdir="/usr/local/apache2",
        # httpd-foreground: `rm -f logs/httpd.pid; exec httpd -DFOREGROUND "$@"`
        commands={"httpd-foreground": ("httpd", "-DFOREGROUND"), "httpd": ("httpd",),
                  "apachectl": ("apachectl",)},
        env={"HTTPD_PREFIX": "/usr/local/apache2", "PATH": f"/usr/local/apache2/bin:{PATH}",
             "HTTPD_VERSION": "2.4.65", "HTTPD_PATCHES": ""}),
    "docker.io/library/redis": _image(
        entrypoint=("docker-entrypoint.sh",), cmd=("redis-server",), workdir="/data",
        commands={"redis-server": ("redis-server",), "redis-cli": ("redis-cli",),
                  "redis-sentinel": ("redis-sentinel",)},
        wrappers={"docker-entrypoint.sh": "redis-server"}, env={"REDIS_VERSION": "8.2.2"}),
    "docker.io/library/postgres": _image(
        entrypoint=("docker-entrypoint.sh",), cmd=("postgres",), commands=_POSTGRES,
        wrappers={"docker-entrypoint.sh": "postgres"},
        env={"PATH": f"{PATH}:/usr/lib/postgresql/17/bin", "GOSU_VERSION": "1.19", "LANG": "en_US.utf8",
             "PG_MAJOR": "17", "PG_VERSION": "17.11-1.pgdg13+2", "PGDATA": "/var/lib/postgresql/data"}),
    "docker.io/library/eclipse-temurin": _image(
        entrypoint=("/__cacert_entrypoint.sh",), cmd=("jshell",), commands=_JAVA,
        wrappers={"__cacert_entrypoint.sh": ""},
        env={"PATH": f"/opt/java/openjdk/bin:{PATH}", "JAVA_HOME": "/opt/java/openjdk", "LANG": "en_US.UTF-8",
             "LANGUAGE": "en_US:en", "LC_ALL": "en_US.UTF-8", "JAVA_VERSION": "jdk-21.0.9+10"}),
    "docker.io/curlimages/curl": _image(
        entrypoint=("/entrypoint.sh",), cmd=("curl",), commands={"curl": ("curl",)},
        wrappers={"entrypoint.sh": "curl"}, env={"CURL_CA_BUNDLE": "/cacert.pem"}),
    "registry.k8s.io/pause": _image(entrypoint=("/pause",), commands={"pause": ("sleep", "infinity")}),
})


class Unavailable(Exception):
    """The image runs a program this host does not have."""


def lookup(image: str) -> Image | None:
    """The configuration of a normalized image reference, None for an image not listed."""
    name = image.partition("@")[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[:name.rfind(":")]
    return IMAGES.get(name)


def argv(image: Image | None, command: list[str], args: list[str]) -> list[str]:
    """What a container runs, by Kubernetes' rules; [] when neither the container nor its
    image says."""
    if command:
        return [*command, *args]
    if image is None:
        return []
    return [*image.entrypoint, *(args or image.cmd)]


def host_argv(image: Image | None, argv: list[str], *, image_ref: str = "") -> list[str]:
    """`argv` with the image's entrypoint scripts skipped and its programs replaced by the
    host's; raises `Unavailable` for a program the host does not have."""
    if image is None:
        return argv
    while argv:
        name = os.path.basename(argv[0])
        if name in image.wrappers:
            rest, first = argv[1:], image.wrappers[name]
            if first and (not rest or rest[0].startswith("-")):
                rest = [first, *rest]
            argv = rest
            continue
        prefix = image.commands.get(name)
        if prefix is None:
            return argv
        found = shutil.which(prefix[0], path=_host_path())
        if found is None:
            raise Unavailable(f'image {image_ref!r} runs "{name}", which this host does not have: install '
                              f'{prefix[0]} on the host to run this image on a Process pool')
        return [found, *prefix[1:], *argv[1:]]
    return argv


def environment(image: Image | None, env: dict[str, str]) -> dict[str, str]:
    """The process environment: the image's ENV under the container's. `env` carries
    podenv's default PATH, which the image's replaces unless the container set its own."""
    if image is None:
        return env
    out = dict(env)
    for key, value in image.env.items():
        if key not in env or (key == "PATH" and env[key] == podenv.DEFAULT_PATH):
            out[key] = value
    return out


def _host_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), PATH])
