"""EKS managed node groups: user data that lays the containerd hosts files down at boot."""

from __future__ import annotations

from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import yaml

from components.nodes.containerd import containerd_hosts_path, render_containerd_hosts_toml
from components.nodes.mirrors import DEFAULT_MIRRORS, MirrorOptions
from components.settings.upstreams import Upstream


def render_eks_user_data(cache_host: str, upstreams: tuple[Upstream, ...], options: MirrorOptions = DEFAULT_MIRRORS) -> str:
    """A MIME part for EKS AL2023 (nodeadm) user data: cloud-init writes the hosts.toml files.

    The EKS AL2023 images already point containerd's config_path at /etc/containerd/certs.d, and
    containerd reads hosts.toml per pull, so no restart is needed. Add this part next to your
    NodeConfig part in the launch template's multipart user data.
    """
    cloud_config = {
        "write_files": [
            {
                "path": containerd_hosts_path(upstream),
                "permissions": "0644",
                "owner": "root:root",
                "content": render_containerd_hosts_toml(cache_host, upstream, options),
            }
            for upstream in upstreams
        ]
    }
    message = MIMEMultipart(boundary="HARBORCACHE")
    message.attach(MIMEText("#cloud-config\n" + yaml.safe_dump(cloud_config, sort_keys=False), "cloud-config"))
    return message.as_string()
