"""Per service: a StatefulSet (the processing kernel keeps each partition's store on disk),
its Services, PodDisruptionBudget, HorizontalPodAutoscaler on consumer lag and ServiceMonitor.

Variable names come from the settings declarations, so a renamed setting renames here too.
"""

from __future__ import annotations

from typing import Any

from emeuse.deploy import certificates
from emeuse.deploy.strimzi import CLUSTER, CLUSTER_CA_SECRET, PART_OF, PLATFORM_PORT
from emeuse.registry import PARTITIONS
from emeuse.runtime import security
from emeuse.runtime import settings as s

Manifest = dict[str, Any]

IMAGE = "emeuse-platform"
DATA_PATH = "/var/lib/emeuse"
SECRETS_PATH = "/etc/emeuse"
CALLERS_SECRET = "emeuse-grpc-callers"  # noqa: S105 - the Secret's name, not its value
CONFIG_MAP = "emeuse-platform"
TLS_PATH = f"{SECRETS_PATH}/tls"
# How Prometheus scrapes /metrics, and kubelet's liveness probe reads it: "http", or "https"
# once the services serve /metrics over TLS (the scrape then presents Prometheus' own
# certificate and checks the service's against the namespace CA). The one switch.
METRICS_SCHEME = "http"
# Kubelet's gRPC probes speak no TLS: each service answers them on a plaintext port that
# serves the health service alone (EMEUSE_<SERVICE>_HEALTH_PORT), its gRPC port + 1000.
HEALTH_PORT_OFFSET = 1000
# A service at more instances than its topics have partitions would hold nothing.
MAX_INSTANCES = PARTITIONS
MIN_INSTANCES = 2
# Records behind per instance before the autoscaler adds one (emeuse_consumer_lag, summed).
LAG_PER_INSTANCE = "1000"
# Where a service reaches another's gRPC, beside every service's own variables.
PEERS = {"access": {"EMEUSE_ACCESS_CHRONIC_GRPC": "emeuse-chronic:{chronic}"}}


def name(service: str) -> str:
    return f"emeuse-{service}"


def health_port(service: str) -> int:
    return s.DEFAULT_PORTS[service][0] + HEALTH_PORT_OFFSET


def token_secret(service: str) -> str:
    """The Secret holding the token a service presents to others (key `token`)."""
    return f"emeuse-{service}-grpc-token"


def labels(service: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name(service),
        "app.kubernetes.io/component": service,
        "app.kubernetes.io/part-of": PART_OF,
    }


def _selector(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name(service)}


def platform_config() -> Manifest:
    """What every service reads alike; the overlays change the replication factor."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "data": {
            s.KAFKA_BOOTSTRAP.name: f"{CLUSTER}-kafka-bootstrap:{PLATFORM_PORT}",
            s.REPLICATION_FACTOR.name: "3",
            s.LOG_LEVEL.name: "info",
            s.DATA_DIR.name: DATA_PATH,
            s.GRPC_CALLERS_FILE.name: f"{SECRETS_PATH}/callers/grpc-callers",
            security.KAFKA_SECURITY_PROTOCOL.name: "SASL_SSL",
            # Mutual TLS as under `make up`, with cert-manager's certificates (certificates.py).
            security.GRPC_TLS.name: "mtls",
            security.TLS_CA_FILE.name: f"{TLS_PATH}/ca.crt",
            # /metrics stays plain HTTP, said so: the liveness probe reads it (kubelet's HTTPS
            # probes show no client certificate) and the ServiceMonitor follows METRICS_SCHEME.
            security.METRICS_TLS.name: "off",
            security.KAFKA_CA_FILE.name: f"{SECRETS_PATH}/kafka-ca/ca.crt",
        },
    }


def _env(service: str) -> list[Manifest]:
    grpc_port, metrics_port = s.DEFAULT_PORTS[service]
    field = {
        "POD_NAME": "metadata.name",
        "POD_NAMESPACE": "metadata.namespace",
    }
    env: list[Manifest] = [
        {"name": key, "valueFrom": {"fieldRef": {"fieldPath": path}}} for key, path in field.items()
    ]
    ports = {service_name: ports[0] for service_name, ports in s.DEFAULT_PORTS.items()}
    own = {
        # Static group membership: the pod name survives a restart, so does the member id.
        s.INSTANCE_ID.variable(service): "$(POD_NAME)",
        # Other instances reach this one's gRPC through the headless Service's pod record.
        s.ADVERTISED_HOST.name: f"$(POD_NAME).{name(service)}-pods.$(POD_NAMESPACE).svc",
        s.GRPC_HOST.variable(service): "0.0.0.0",
        s.GRPC_PORT.variable(service): str(grpc_port),
        s.METRICS_PORT.variable(service): str(metrics_port),
        s.HEALTH_PORT.variable(service): str(health_port(service)),
        # cert-manager's Secret, mounted whole: its renewals reach the files in place.
        security.TLS_CERT_FILE.variable(service): f"{TLS_PATH}/tls.crt",
        security.TLS_KEY_FILE.variable(service): f"{TLS_PATH}/tls.key",
        # A rolling restart comes back within the session timeout: keep the partitions.
        s.LEAVE_GROUP_ON_STOP.variable(service): "false",
        s.GRPC_TOKEN_FILE.variable(service): f"{SECRETS_PATH}/token/token",
        # The KafkaUser's Secret, made by Strimzi's User Operator.
        security.KAFKA_PASSWORD_FILE.variable(service): f"{SECRETS_PATH}/kafka-user/password",
        **{key: value.format(**ports) for key, value in PEERS.get(service, {}).items()},
    }
    env.extend({"name": key, "value": value} for key, value in own.items())
    return env


def stateful_set(service: str) -> Manifest:
    grpc_port, metrics_port = s.DEFAULT_PORTS[service]
    container: Manifest = {
        "name": service,
        "image": IMAGE,
        "args": ["python", "-m", f"services.{service}"],
        "ports": [
            {"name": "grpc", "containerPort": grpc_port},
            {"name": "metrics", "containerPort": metrics_port},
            {"name": "health", "containerPort": health_port(service)},
        ],
        "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}],
        "env": _env(service),
        # Table recovery can take minutes after a move: the startup probe allows 10.
        "startupProbe": {
            "grpc": {"port": health_port(service)},
            "periodSeconds": 10,
            "failureThreshold": 60,
        },
        # Ready once gRPC answers SERVING (not while shutting down).
        "readinessProbe": {"grpc": {"port": health_port(service)}, "periodSeconds": 10},
        # Alive while /metrics answers: it is served from its own thread, even mid-recovery.
        "livenessProbe": {
            "httpGet": {"path": "/metrics", "port": "metrics", "scheme": METRICS_SCHEME.upper()},
            "periodSeconds": 20,
            "failureThreshold": 3,
        },
        # To be measured (docs/operations.md, Sizing); the limit equals the request.
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_PATH},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, the pod's own
            {"name": "callers", "mountPath": f"{SECRETS_PATH}/callers", "readOnly": True},
            {"name": "token", "mountPath": f"{SECRETS_PATH}/token", "readOnly": True},
            {"name": "tls", "mountPath": TLS_PATH, "readOnly": True},
            {"name": "kafka-ca", "mountPath": f"{SECRETS_PATH}/kafka-ca", "readOnly": True},
            {"name": "kafka-user", "mountPath": f"{SECRETS_PATH}/kafka-user", "readOnly": True},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name(service), "labels": labels(service)},
        "spec": {
            "serviceName": f"{name(service)}-pods",
            "replicas": MIN_INSTANCES,
            # Instances start together: each waits for its partitions, not for the others.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": _selector(service)},
            "template": {
                "metadata": {"labels": labels(service)},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": _selector(service)},
                        }
                    ],
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        {
                            "name": "callers",
                            "secret": {"secretName": CALLERS_SECRET, "defaultMode": 0o440},
                        },
                        {
                            "name": "token",
                            "secret": {"secretName": token_secret(service), "defaultMode": 0o440},
                        },
                        {
                            "name": "tls",
                            "secret": {
                                "secretName": certificates.tls_secret(service),
                                "defaultMode": 0o440,
                            },
                        },
                        {
                            "name": "kafka-ca",
                            "secret": {"secretName": CLUSTER_CA_SECRET, "defaultMode": 0o444},
                        },
                        {
                            "name": "kafka-user",
                            "secret": {"secretName": name(service), "defaultMode": 0o440},
                        },
                    ],
                },
            },
            # Each partition's RocksDB store: kept across restarts, so recovery reads only
            # the changelog's tail.
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                    },
                }
            ],
        },
    }


def services(service: str) -> list[Manifest]:
    """The Service callers use, and the headless one that names each pod for its peers."""
    grpc_port, metrics_port = s.DEFAULT_PORTS[service]
    ports = [
        {"name": "grpc", "port": grpc_port, "targetPort": "grpc"},
        {"name": "metrics", "port": metrics_port, "targetPort": "metrics"},
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name(service), "labels": labels(service)},
            "spec": {"selector": _selector(service), "ports": ports},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name(service)}-pods", "labels": labels(service)},
            "spec": {
                "clusterIP": "None",
                # Peers resolve an instance while it recovers, before it is ready.
                "publishNotReadyAddresses": True,
                "selector": _selector(service),
                # gRPC only: the ServiceMonitor scrapes the other Service's metrics port.
                "ports": ports[:1],
            },
        },
    ]


def external_name(service: str) -> str:
    return f"{name(service)}-external"


def external_service(service: str) -> Manifest:
    """The service's gRPC port behind a cloud load balancer, for callers outside the
    cluster (deploy/cluster.toml, production overlay). A TCP balancer: TLS passes through
    to the pods, which check the caller's client certificate themselves (mutual TLS ends at
    the service, never at the balancer). Not /metrics. Labelled apart so the service's
    ServiceMonitor does not select it."""
    grpc_port = s.DEFAULT_PORTS[service][0]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": external_name(service),
            "labels": labels(service) | {"app.kubernetes.io/name": external_name(service)},
        },
        "spec": {
            "type": "LoadBalancer",
            "selector": _selector(service),
            "ports": [{"name": "grpc", "port": grpc_port, "targetPort": "grpc", "protocol": "TCP"}],
        },
    }


def disruption_budget(service: str) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name(service), "labels": labels(service)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(service)}},
    }


def autoscaler(service: str) -> Manifest:
    """More instances when the service falls behind: emeuse_consumer_lag, served to the
    autoscaler as an external metric (prometheus-adapter, docs/operations.md)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name(service), "labels": labels(service)},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": name(service),
            },
            "minReplicas": MIN_INSTANCES,
            "maxReplicas": MAX_INSTANCES,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": "emeuse_consumer_lag",
                            "selector": {"matchLabels": {"service": service}},
                        },
                        "target": {"type": "AverageValue", "averageValue": LAG_PER_INSTANCE},
                    },
                }
            ],
            # Every scale step moves partitions and their stores: add fast, remove slowly.
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 900,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                }
            },
        },
    }


def _scrape(service: str) -> Manifest:
    """One endpoint, by METRICS_SCHEME: under https Prometheus checks the service's
    certificate against the namespace CA, for the Service's name (it scrapes pod
    addresses), and presents its own (cert-manager's `emeuse-prometheus-tls`)."""
    endpoint: Manifest = {"port": "metrics", "interval": "15s", "scheme": METRICS_SCHEME}
    if METRICS_SCHEME == "https":
        secret = certificates.tls_secret(certificates.SCRAPER)
        endpoint["tlsConfig"] = {
            "ca": {"secret": {"name": secret, "key": "ca.crt"}},
            "cert": {"secret": {"name": secret, "key": "tls.crt"}},
            "keySecret": {"name": secret, "key": "tls.key"},
            "serverName": name(service),
        }
    return endpoint


def service_monitor(service: str) -> Manifest:
    """Prometheus Operator scrape; job="<service>" as on the local Prometheus, so the rules
    in deploy/prometheus hold unchanged."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": name(service), "labels": labels(service)},
        "spec": {
            "jobLabel": "app.kubernetes.io/component",
            "selector": {"matchLabels": labels(service)},
            "endpoints": [_scrape(service)],
        },
    }


def workload(service: str) -> list[Manifest]:
    return [
        stateful_set(service),
        *services(service),
        disruption_budget(service),
        autoscaler(service),
        service_monitor(service),
    ]
