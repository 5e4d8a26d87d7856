"""HarborUpgradeHold: an HA node other than node 0 stops its older Harbor before node 0 migrates the
database to a new `harborVersion` (issue 18 point 6).

Harbor's core migrates the schema when the new version starts, and nothing says an older core runs
on the newer schema (Harbor documents no mixed versions). So on a version change: the other nodes
leave the load balancer and stop their Harbor (files/hold-harbor.sh: only a node whose installed
version differs; disabled, so no reboot brings the old core back), the database is snapshotted
(components/aws/data_services.py), node 0 migrates and rejoins, then every other node installs the
new version in turn. Node 0 serves alone from its rejoin until node 1's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.settings.settings import Settings
from components.vm.files import script
from components.vm.install import script_command


@dataclass(frozen=True)
class HarborUpgradeHoldArgs:
    settings: Settings
    connection: remote.ConnectionArgsDict
    instance_id: pulumi.Input[str]
    # The node out of the load balancer first (components/aws/target_drain.py), and reachable.
    depends_on: list[pulumi.Resource]


class HarborUpgradeHold(pulumi.ComponentResource):
    def __init__(self, name: str, args: HarborUpgradeHoldArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborUpgradeHold", name, None, opts)
        version = args.settings.harbor_version
        self.hold = remote.Command(
            f"{name}-stop",
            connection=args.connection,
            create=script_command(env={"HARBOR_VERSION": version}),
            stdin=script("hold-harbor.sh"),
            # Runs again for another version or another machine; an unchanged `pulumi up` runs nothing.
            triggers=[args.instance_id, version],
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.register_outputs({})
