"""`lks.nodes.images`: the common public images' configuration and Kubernetes' command/args
rules, then the Process runtime running what a container of such an image would run."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from support import pod_or_none

from lks.nodes import agent as agents
from lks.nodes import images, kubelets, namespaces, podenv, pods, streams
from lks.nodes.runtime import normalize_image
from lks.nodes.streams import LogOptions

ROOT = namespaces.available()
BUSYBOX, PYTHON, NGINX = (images.lookup(normalize_image(i)) for i in ("busybox", "python:3.13-slim", "nginx:1.29"))


@pytest.mark.parametrize(("ref", "known"), [
    pytest.param("busybox", True, id="short"),
    pytest.param("docker.io/library/python:3.12", True, id="tagged"),
    pytest.param("postgres@sha256:" + "a" * 64, True, id="digest"),
    pytest.param("registry.k8s.io/pause:3.10", True, id="other-registry"),
    pytest.param("example.com/team/app:1", False, id="unknown"),
])
def test_lookup(ref, known):
    assert (images.lookup(normalize_image(ref)) is not None) is known


@pytest.mark.parametrize(("image", "command", "args", "expected"), [
    pytest.param(BUSYBOX, [], ["sh", "-c", "echo hi"], ["sh", "-c", "echo hi"], id="args-without-entrypoint"),
    pytest.param(BUSYBOX, [], [], ["sh"], id="neither"),
    pytest.param(NGINX, [], [], ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"], id="entrypoint-cmd"),
    pytest.param(NGINX, [], ["nginx-debug"], ["/docker-entrypoint.sh", "nginx-debug"], id="args-after-entrypoint"),
    pytest.param(NGINX, ["sleep"], ["1"], ["sleep", "1"], id="command-replaces-both"),
    pytest.param(None, [], ["x"], [], id="unknown-image"),
])
def test_argv_rules(image, command, args, expected):
    assert images.argv(image, command, args) == expected


def test_host_programs_and_entrypoint_scripts(monkeypatch):
    monkeypatch.setattr(images.shutil, "which", lambda name, path=None: f"/host/{name}" if name != "redis-server" else None)
    assert images.host_argv(PYTHON, ["python", "-c", "1"]) == ["/host/python3", "-c", "1"]
    assert images.host_argv(PYTHON, ["/usr/local/bin/python3"]) == ["/host/python3"]
    assert images.host_argv(PYTHON, ["sh", "-c", "python"]) == ["sh", "-c", "python"]  # not one of the image's
    assert images.host_argv(NGINX, ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]) == [
        "/host/nginx", "-g", "daemon off;"]
    node = images.lookup("docker.io/library/node:22")
    assert images.host_argv(node, ["docker-entrypoint.sh", "--version"]) == ["/host/node", "--version"]
    httpd = images.lookup("docker.io/library/httpd:2.4")
    assert images.host_argv(httpd, ["httpd-foreground"]) == ["/host/httpd", "-DFOREGROUND"]
    with pytest.raises(images.Unavailable, match='runs "redis-server", which this host does not have'):
        images.host_argv(images.lookup("docker.io/library/redis:8"), ["docker-entrypoint.sh", "redis-server"],
                         image_ref="redis")


def test_environment_is_image_env_under_the_containers():
    env = {"PATH": podenv.DEFAULT_PATH, "HOSTNAME": "p", "PYTHON_VERSION": "mine"}
    out = images.environment(PYTHON, env)
    assert out["PATH"].startswith("/usr/local/bin:") and out["PYTHON_VERSION"] == "mine"
    assert out["GPG_KEY"] and out["HOSTNAME"] == "p"
    assert images.environment(PYTHON, {**env, "PATH": "/mine"})["PATH"] == "/mine"
    assert images.environment(None, env) == env


# -- the Process runtime -------------------------------------------------------------------

@pytest.fixture
async def node(cluster, make_template, tmp_path):
    pods.PodWorkers.configure(cluster, data_dir=tmp_path / "nodes")
    a = agents.NodeAgent(cluster=cluster, template=make_template(workload_runtime="Process"), index=0,
                         address="10.224.0.4", pod_cidrs=["10.244.3.0/24"])
    await a.start()
    yield a
    await a.stop()


async def _run(cluster, node, name, container):
    body = {"metadata": {"name": name}, "spec": {"nodeName": node.name, "restartPolicy": "Never",
                                                 "containers": [{"name": "main", **container}]}}
    await cluster.registry("", "v1", "pods").create("default", body)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pod = await pod_or_none(cluster, name)
        st = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
        waiting = st[0].get("state", {}).get("waiting") or {}
        if pod["status"].get("phase") in ("Succeeded", "Failed") or waiting.get("reason") == "CreateContainerError":
            return pod
        await asyncio.sleep(0.01)
    raise AssertionError(f"pod {name} did not finish: {pod and pod.get('status')}")


async def _logs(node, pod):
    kubelet = streams.lookup(node.cluster.id, node.name)
    assert isinstance(kubelet, kubelets.ProcessKubelet)
    return b"".join([c async for c in kubelet.logs(pod, LogOptions(container="main"))]).decode()


async def test_args_alone_run_as_the_command_of_an_image_without_entrypoint(cluster, node):
    pod = await _run(cluster, node, "hi", {"image": "busybox", "args": ["sh", "-c", "echo hi; echo $PATH"]})
    assert pod["status"]["phase"] == "Succeeded"
    assert await _logs(node, pod) == f"hi\n{podenv.DEFAULT_PATH}\n"


async def test_python_image_runs_the_hosts_python(cluster, node):
    script = "import os, sys; print(os.environ['PYTHON_VERSION'], sys.version_info[0])"
    pod = await _run(cluster, node, "py", {"image": "python:3.13", "args": ["python", "-c", script]})
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert await _logs(node, pod) == f"{PYTHON.env['PYTHON_VERSION']} {sys.version_info[0]}\n"


@pytest.mark.skipif(not ROOT, reason="an image's WORKDIR the host lacks is created only in a mount namespace")
async def test_image_workdir(cluster, node):
    pod = await _run(cluster, node, "wd", {"image": "golang:1.24", "command": ["pwd"]})
    assert await _logs(node, pod) == "/go\n"


async def test_an_image_program_the_host_lacks_is_a_create_container_error(cluster, node, monkeypatch):
    monkeypatch.setattr(images, "_host_path", lambda: "/nonexistent")
    pod = await _run(cluster, node, "web", {"image": "nginx:1.29"})
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerError"
    assert waiting["message"] == ("image 'nginx:1.29' runs \"nginx\", which this host does not have: install nginx "
                                  "on the host to run this image on a Process pool")
