"""The single-VM stack as main registered it before HA (issue 13 step 3), as data a test compares against.

`python tests/standins/single_vm_golden.py > tests/data/single_vm_main.json`, run with PYTHONPATH pointing at a
checkout of main (0956546: steps 1-2, the IMDS guard, database identity), recorded what that program
registered under the same mocks. Resource names, types, parents and options for everything; inputs
for every cloud resource (not the remote commands and Harbor's dynamic resources, whose scripts
other changes may legitimately touch). A deliberate single-VM change of another step means
recording it again from a main that has that change, and saying so in the commit. Re-recorded
twice so: `stores` (one VM on RDS) takes its secret key and admin password from HarborSharedSecrets,
so that the database and a later switch to HA agree on the key (see docs/scale.md, switching to HA); and
`stores` alone again when the database's final snapshot identifier became valid for any stack name
and unique per database instance (a RandomId child; `harbor-cache-<stack>-final-<hex>`), and for
the mock passwords of its RDS/ElastiCache inputs once AwsMocks' RandomPassword honoured `length`
(mock output only: the program registers the same); `stores` once more for issue 18: s3 mode's
instance back to IMDS hop limit 1 without the guard tag, and the credential relay's script and unit
written by the install; and every entry when each stack got its own CloudWatch namespace
(`HarborCache/<stack>`: the alarms' namespace and the role's put-metrics condition, nothing else). And
once more for the test suite's own stack (tests/stacks/Pulumi.dev.yaml, issue 21): its e-mail, CIDRs
and OIDC issuer are no longer the example's, which the validator refuses; the values were replaced
in the recorded inputs and nothing else (the program's registrations under the old and the new
values differ only by them).
Every configuration once more for the one resource issue 20 added, HarborConfig's SystemSettings
(project_creation_restriction adminonly, self_registration false): only that row is new.
`stores` once more for issue 22's residual (the VM reached every database of the VPC): the stores' client
group `harbor-data-client-sg` is new (egress 5432/6379 to the stores' groups only), the instance joins it
besides `harbor-vm-sg`, and `harbor-vm-sg` no longer lets 5432/6379 out to the VPC's block; only those
three rows changed (`__provider` kept as recorded), `dev` and `placed` are as they were.
Re-recorded for all three for issue 19 (the cache watched without false greens): new alarms
(inodes, write-backs, 5xx, per-project probe, upstream health, quota, GC, public path, certificate,
snapshot), the probe alarms treating silence as failure over the probe's interval and coming after
the deploy's smoke step, the backup watch, the dashboard, InstanceRunning (each dynamic provider's
`__provider` kept as main recorded it: the pre-layout module paths that tests/aws/test_host_key.py
replays). And again for issue 19's retention alarms: the five `retention-<upstream>` alarms
(RetentionFailed per proxy project) are new and the dashboard's failures widget shows them; nothing
else changed (`__provider` kept as recorded). And again for issue 19's alarm topic nobody listens to:
the `no-alarm-subscriber` alarm (ConfirmedAlarmSubscribers) is new, the role's put-metrics policy
may list the subscriptions of the stack's topic (and so depends on it), and the dashboard's health
widget shows the count; nothing else changed (`__provider` kept as recorded). And for review 22b's H1: the
instance profile carries the program's tags (Name, harbor-cache:stack), which the policy pack looks up at `up`;
only those three rows' `tags` are new (`__provider` kept as recorded).
And for review 22g T1 (the mocks now answer each alarm's `arn`, as pulumi-aws does): only the dashboard rows changed,
their alarm widget listing the alarms' ARNs where it held nulls (everything else kept as recorded).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.standins.registrations import options_row, record

# Configurations an existing single-VM stack may have: the dev stack, and the dev stack with the
# stores of steps 1-2, a fixed subnet, metrics and alarm e-mail.
GOLDEN_CONFIGS: dict[str, dict[str, Any]] = {
    "dev": {},
    "stores": {"storage": "s3", "externalServices": True, "databaseMultiAz": True},
    "placed": {
        "availabilityZone": "eu-central-1b",
        "subnetId": "subnet-0b1b2c3d4e5f60719",
        "metricsAllowedCidrs": ["10.0.0.0/8"],
        "alarmEmail": "ops@cache-fixture.net",
    },
}
INPUT_TYPE_PREFIXES = ("aws:", "tls:", "random:", "pulumi-python:dynamic/ec2:")


def fingerprint(run: Any) -> list[dict[str, Any]]:
    names = {r.urn: r.name for r in run.registrations}
    types = {r.urn: r.type for r in run.registrations}
    rows = []
    for r in run.registrations:
        row: dict[str, Any] = {"type": r.type, "name": r.name, **options_row(r, names, types)}
        if r.type.startswith(INPUT_TYPE_PREFIXES):
            row["inputs"] = json.loads(json.dumps(r.inputs, sort_keys=True, default=str))
            row["dependencies"] = sorted(names.get(u, u) for u in r.dependencies)
        rows.append(row)
    return sorted(rows, key=lambda row: (row["type"], row["name"]))


if __name__ == "__main__":
    json.dump(record(GOLDEN_CONFIGS, fingerprint), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
