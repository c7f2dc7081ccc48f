"""The hosted "controller manager": the controllers that run inside the service for every
cluster. Each controller reads informer caches, writes through the registries like any API
client, and is safe to run twice (level-triggered). `ControllerManager` starts and stops a
cluster's set; `lks.controlplanes` owns one per running cluster.
"""

from __future__ import annotations

from lks.controllers.addons import AddonManager
from lks.controllers.admissionpolicystatus import AdmissionPolicyStatusController
from lks.controllers.apiservice import APIServiceAvailabilityController
from lks.controllers.certificatesigning import CertificateSigningController
from lks.controllers.clusterroleaggregation import ClusterRoleAggregationController
from lks.controllers.crd import CRDController
from lks.controllers.cronjob import CronJobController
from lks.controllers.daemonset import DaemonSetController
from lks.controllers.deployment import DeploymentController
from lks.controllers.disruption import DisruptionController
from lks.controllers.endpoints import EndpointsController
from lks.controllers.endpointslice import EndpointSliceController
from lks.controllers.garbagecollector import GarbageCollector
from lks.controllers.horizontalpodautoscaler import HorizontalPodAutoscalerController
from lks.controllers.job import JobController
from lks.controllers.kubernetesservice import KubernetesServiceController
from lks.controllers.namespace import NamespaceController
from lks.controllers.nodeipam import NodeIPAMController
from lks.controllers.nodelifecycle import NodeLifecycleController
from lks.controllers.podgc import PodGCController
from lks.controllers.pvcprotection import PVCProtectionController
from lks.controllers.pvprotection import PVProtectionController
from lks.controllers.replicaset import REPLICATION_CONTROLLER, ReplicaSetController
from lks.controllers.resourcequota import ResourceQuotaController
from lks.controllers.rootcacert import RootCACertPublisher
from lks.controllers.scheduler import Scheduler
from lks.controllers.serviceaccount import ServiceAccountsController
from lks.controllers.statefulset import StatefulSetController
from lks.controllers.systemnamespaces import SystemNamespacesController
from lks.controllers.tainteviction import TaintEvictionController
from lks.controllers.tokens import TokensController
from lks.controllers.ttlafterfinished import TTLAfterFinishedController
from lks.kube.cluster import Cluster
from lks.observability import logs, stats


class ControllerManager:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        # one line per controller, in start order
        self.controllers = [
            CRDController(cluster),
            APIServiceAvailabilityController(cluster),
            ClusterRoleAggregationController(cluster),
            NamespaceController(cluster),
            SystemNamespacesController(cluster),
            GarbageCollector(cluster),
            Scheduler(cluster),
            NodeIPAMController(cluster),
            ReplicaSetController(cluster),
            ReplicaSetController(cluster, REPLICATION_CONTROLLER),
            DeploymentController(cluster),
            StatefulSetController(cluster),
            DaemonSetController(cluster),
            JobController(cluster),
            TTLAfterFinishedController(cluster),
            CronJobController(cluster),
            ServiceAccountsController(cluster),
            TokensController(cluster),
            RootCACertPublisher(cluster),
            KubernetesServiceController(cluster),
            EndpointsController(cluster),
            EndpointSliceController(cluster),
            NodeLifecycleController(cluster),
            TaintEvictionController(cluster),
            PodGCController(cluster),
            DisruptionController(cluster),
            HorizontalPodAutoscalerController(cluster),
            ResourceQuotaController(cluster),
            PVCProtectionController(cluster),
            PVProtectionController(cluster),
            AdmissionPolicyStatusController(cluster),
            CertificateSigningController(cluster),
            AddonManager(cluster),  # last: the add-ons' pods need the rest running
        ]

    async def start(self) -> None:
        stats.register_controllers(self.cluster, self.controllers)  # their workqueue_* and scheduler_* metrics
        with logs.serving(self.cluster.id):  # what they log, in tasks started here too, is the cluster's
            for c in self.controllers:
                await c.start()
                logs.controller_manager_log.info(logs.infos("Started controller", controller=_name(c)))

    async def stop(self) -> None:
        for c in reversed(self.controllers):
            await c.stop()


def _name(controller: object) -> str:
    """A controller's name as kube-controller-manager logs it (`deployment-controller`)."""
    queue = getattr(controller, "queue", None)
    name = getattr(queue, "name", None) if queue is not None and hasattr(queue, "adds") else None
    return name or type(controller).__name__
