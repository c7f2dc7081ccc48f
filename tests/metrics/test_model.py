"""The usage model of simulated containers: annotations (constant, curve, per container), and
the default, a fraction of the requests varied per pod."""

from __future__ import annotations

import pytest

from lks.metrics import model

MI = 2**20


def _pod(notes=None, containers=None, uid="u1"):
    return {"metadata": {"name": "p", "uid": uid, "annotations": notes or {}},
            "spec": {"containers": containers or [{"name": "app"}]}}


def _usage(pod, age=0.0, container="app"):
    return model.usage(model.pod_model(pod)[container], age)


def test_constant_annotations_apply_to_each_container_and_a_suffixed_key_to_one():
    pod = _pod({"lks.dev/simulate-cpu": "250m", "lks.dev/simulate-memory": "64Mi",
                "lks.dev/simulate-cpu.side": "1"}, [{"name": "app"}, {"name": "side"}])
    assert _usage(pod) == (pytest.approx(0.25), 64 * MI)
    assert _usage(pod, container="side") == (pytest.approx(1.0), 64 * MI)


def test_a_curve_interpolates_over_the_containers_life_and_holds_its_ends():
    pod = _pod({"lks.dev/simulate-cpu-curve": "100m@0s,800m@1m,100m@300s", "lks.dev/simulate-cpu": "5"})
    assert _usage(pod, -3)[0] == pytest.approx(0.1)
    assert _usage(pod, 30)[0] == pytest.approx(0.45)
    assert _usage(pod, 60)[0] == pytest.approx(0.8)
    assert _usage(pod, 180)[0] == pytest.approx(0.45)
    assert _usage(pod, 9999)[0] == pytest.approx(0.1)


def test_defaults_are_a_share_of_the_requests_varied_per_pod_and_capped_by_limits():
    spec = [{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "200Mi"}}}]
    figures = {_usage(_pod(containers=spec, uid=f"u{i}")) for i in range(20)}
    assert len(figures) > 10  # pods differ ...
    for cpu, memory in figures:  # ... around the shares
        assert 0.5 * model.DEFAULT_CPU_SHARE * (1 - model.JITTER) <= cpu <= 0.5 * model.DEFAULT_CPU_SHARE * (1 + model.JITTER)
        assert 200 * MI * 0.6 * (1 - model.JITTER) - 4096 <= memory <= 200 * MI * 0.6 * (1 + model.JITTER)
        assert memory % 4096 == 0
    assert _usage(_pod(uid="x")) == _usage(_pod(uid="x"))  # stable per pod
    cpu, memory = _usage(_pod())
    assert cpu < 0.01 and memory < 32 * MI  # no requests: an idle process
    capped = [{"name": "app", "resources": {"limits": {"cpu": "200m", "memory": "32Mi"}}}]
    assert _usage(_pod({"lks.dev/simulate-cpu": "2", "lks.dev/simulate-memory": "1Gi"}, capped)) == (
        pytest.approx(0.2), 32 * MI)


@pytest.mark.parametrize("text", ["lots", "100m@", "100m@later", "-1@0s", ""])
def test_malformed_annotations_are_ignored(text):
    spec = [{"name": "app", "resources": {"requests": {"cpu": "1"}}}]
    pod = _pod({"lks.dev/simulate-cpu-curve": text, "lks.dev/simulate-cpu": text}, spec)
    cpu, _ = _usage(pod)
    assert 0.4 * (1 - model.JITTER) <= cpu <= 0.4 * (1 + model.JITTER)
