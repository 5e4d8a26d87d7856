"""A ConfigMap + DaemonSet that roll the containerd hosts.toml files out to every node of a cluster.

For clusters whose node images cannot be changed (no user data, no config management): `kubectl
apply -f` the output `containerdHostsDaemonSet`. Each node gets a pod that copies the ConfigMap's
files into the host's /etc/containerd/certs.d/<upstream>/hosts.toml, atomically (a copy then a
rename: containerd reads hosts.toml on every pull and must never see half a file), and checks again
every minute, so a new `pulumi up` output applied to the ConfigMap reaches the nodes without a
restart. containerd's config must already set `config_path` (containerdConfigSnippet); most
distributions do (EKS, k3s/RKE2 write their own, kubeadm's default does not).
"""

from __future__ import annotations

import yaml

from components.nodes.containerd import CERTS_DIR, render_containerd_hosts_toml
from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions
from components.settings.upstreams import Upstream

NAME = "harbor-cache-hosts-toml"
NAMESPACE = "kube-system"  # system-node-critical pods belong there
SOURCE_DIR = "/harbor-cache"
TARGET_DIR = "/certs.d"
# From Docker Hub and registry.k8s.io by tag: pulled before the mirror exists on the node (or
# through it once it does; with the default fallback either way works).
SYNC_IMAGE = "docker.io/library/busybox:1.37"
# SOURCE holds <host>/hosts.toml (the ConfigMap's items), TARGET is the host's certs.d.
SYNC_SCRIPT = """set -eu
while true; do
  for source in "$SOURCE"/*/hosts.toml; do
    [ -f "$source" ] || continue
    host=$(basename "$(dirname "$source")")
    mkdir -p "$TARGET/$host"
    if ! cmp -s "$source" "$TARGET/$host/hosts.toml"; then
      cp "$source" "$TARGET/$host/.hosts.toml.new"
      mv "$TARGET/$host/.hosts.toml.new" "$TARGET/$host/hosts.toml"
      echo "wrote $HOST_DIR/$host/hosts.toml"
    fi
  done
  sleep "$INTERVAL_SECONDS"
done
"""


class ManifestDumper(yaml.SafeDumper):
    """Multi-line strings (the hosts.toml files, the script) as literal blocks, readable in review;
    no anchors for repeated objects (the labels), which some tools mishandle."""

    def ignore_aliases(self, data: object) -> bool:
        return True


ManifestDumper.add_representer(
    str,
    lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None),
)


def config_map_key(registry_host: str) -> str:
    """A ConfigMap key for an upstream: keys allow [-._a-zA-Z0-9] only, so host:port becomes host_port
    (DNS names never hold `_`, so no two hosts share a key)."""
    return registry_host.replace(":", "_")


def render_hosts_toml_daemonset(
    cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = DEFAULT_MIRRORS
) -> str:
    """Two Kubernetes objects (ConfigMap, DaemonSet) as one multi-document YAML for `kubectl apply -f`."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "harbor-cache"}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "data": {config_map_key(u.registry_host): render_containerd_hosts_toml(cache_host, u, options) for u in upstreams},
    }
    container = {
        "name": "sync",
        "image": SYNC_IMAGE,
        "command": ["/bin/sh", "-c", SYNC_SCRIPT],
        "env": [
            {"name": "SOURCE", "value": SOURCE_DIR},
            {"name": "TARGET", "value": TARGET_DIR},
            {"name": "HOST_DIR", "value": CERTS_DIR},
            {"name": "INTERVAL_SECONDS", "value": "60"},
        ],
        "volumeMounts": [
            {"name": "hosts-toml", "mountPath": SOURCE_DIR, "readOnly": True},
            {"name": "certs-d", "mountPath": TARGET_DIR},
        ],
        "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}},
        # Root only to write the host's root-owned certs.d; nothing else.
        "securityContext": {
            "runAsUser": 0,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    daemon_set = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    # Every node, control plane and tainted ones included: each one pulls images.
                    "tolerations": [{"operator": "Exists"}],
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 5,
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "hosts-toml",
                            "configMap": {
                                "name": NAME,
                                "items": [
                                    {"key": config_map_key(u.registry_host), "path": f"{u.registry_host}/hosts.toml"}
                                    for u in upstreams
                                ],
                            },
                        },
                        {"name": "certs-d", "hostPath": {"path": CERTS_DIR, "type": "DirectoryOrCreate"}},
                    ],
                },
            },
        },
    }
    return yaml.dump_all([config_map, daemon_set], Dumper=ManifestDumper, sort_keys=False, width=1000)
