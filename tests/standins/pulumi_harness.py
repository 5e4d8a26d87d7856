"""Runs the Pulumi program under mocks and records every RegisterResource request as sent.

MockResourceArgs carries no resource options, so the monitor keeps the raw request: tests read
protect, retainOnDelete, dependencies and secret markers from it.
"""

from __future__ import annotations

import base64
import hashlib
import random as stdlib_random
import re
import runpy
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from components.settings.settings import project_defaults
from components.vm import installer_signature
from tests.paths import FIXTURE_STACK, ROOT

MAIN = ROOT / "__main__.py"
SECRET_SIG = rpc._special_secret_sig  # "1b47061264138c4ac30d75fd1eb44270"

FAKE_ZONE_ID = "Z0123456789EXAMPLE"
FAKE_PUBLIC_IP = "192.0.2.10"
FAKE_REGION = "eu-central-1"
FAKE_VPC_CIDR = "172.31.0.0/16"
FAKE_VPC_SUBNETS = ("subnet-0a1b2c3d4e5f60718", "subnet-0b1b2c3d4e5f60719", "subnet-0c1b2c3d4e5f6071a")
# A default VPC's default subnets: a /20 per AZ, in order, from the start of 172.31.0.0/16 (VPC User
# Guide, "Default VPCs": "a size /20 default subnet in each Availability Zone").
FAKE_SUBNET_CIDRS = ("172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20")
# What ConsoleHostKeyProvider.create outputs: the key line the VM printed on its console.
FAKE_HOST_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDUk9grdco30xPt6cY3mqXqsAFyhbRTQM4qtk39M/wXN"
# What files/acme-account-uri.sh prints on the VM once Traefik has registered.
FAKE_ACME_ACCOUNT_URI = "https://acme-v02.api.letsencrypt.org/acme/acct/123456789\n"
FAKE_ACCOUNT_ID = "123456789012"
FAKE_ALB_DNS_NAME = "harbor-lb-alb-1234567890.eu-central-1.elb.amazonaws.com"
FAKE_ALB_ZONE_ID = "Z215JYRZR1TBD5"
# What Harbor's Sigstore bundle signs in these runs: the program's one network step (fetch and verify
# the bundle, components/vm/installer_signature.release_signed_sha256) is stood in for; the real
# verification runs against a real bundle in tests/vm/test_installer_signature.py.
FAKE_SIGNED_INSTALLER_SHA256 = hashlib.sha256(b"harbor-offline-installer stand-in").hexdigest()


def autoname(name: str) -> str:
    """pulumi-aws's autonaming of a `name` the program leaves out: `<logical name>-<7 random hex>` (provider/autonaming.go
    setAutonaming; pulumi sdk resource.NewUniqueHex), with fixed hex so every run names alike."""
    return f"{name}-1a2b3c4"


def alarm_arn(alarm_name: str) -> str:
    """A CloudWatch alarm's ARN: "arn:aws:cloudwatch:<Region>:<account-id>:alarm:<alarm-name>" (CloudWatch API
    Reference, TagResource ResourceARN)."""
    return f"arn:aws:cloudwatch:{FAKE_REGION}:{FAKE_ACCOUNT_ID}:alarm:{alarm_name}"


class AwsMocks(pulumi.runtime.Mocks):
    """Answers what the cloud would: ids and the computed properties the program reads."""

    # A preview of an update of existing dynamic resources: dynamic providers do not preview, so
    # the engine takes the new inputs as the outputs and every output-only key is unknown, while
    # the resource's id stays known (DESIGN.md "Pulumi"; pkg/resource/deploy/step.go).
    dynamic_update_preview = False
    # Secondary IPv4 blocks of the mock VPC (a test sets them: get_vpc lists them after the primary).
    vpc_secondary_cidrs: tuple[str, ...] = ()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        kind = args.typ
        if kind == "tls:index/privateKey:PrivateKey":
            state.update(
                publicKeyOpenssh=f"ssh-ed25519 AAAAC3Nza-{args.name} test\n",
                privateKeyOpenssh=f"-----BEGIN OPENSSH PRIVATE KEY-----\n{args.name}\n-----END OPENSSH PRIVATE KEY-----\n",
            )
            if args.inputs.get("algorithm") == "RSA":
                # pulumi_tls PrivateKey.private_key_pem: PKCS#1 "RSA PRIVATE KEY" for RSA keys (tls provider docs).
                state.update(privateKeyPem=f"-----BEGIN RSA PRIVATE KEY-----\n{args.name}\n-----END RSA PRIVATE KEY-----\n")
        elif kind == "tls:index/selfSignedCert:SelfSignedCert":
            # pulumi_tls SelfSignedCert.cert_pem: the certificate in PEM.
            state.update(certPem=f"-----BEGIN CERTIFICATE-----\n{args.name}\n-----END CERTIFICATE-----\n")
        elif kind == "aws:ec2/eip:Eip":
            # Node i of replicas > 1 (harbor-vm-<i>-eip) gets its own address; the single VM's is FAKE_PUBLIC_IP.
            node = re.search(r"-(\d+)-eip$", args.name)
            state.update(publicIp=f"192.0.2.{10 + int(node.group(1))}" if node else FAKE_PUBLIC_IP)
        elif kind == "aws:iam/role:Role":
            state.update(arn=f"arn:aws:iam::123456789012:role/{args.name}", name=args.name)
        elif kind == "aws:sns/topicSubscription:TopicSubscription":
            # An e-mail subscription stays pending until someone follows the link AWS mails
            # (pulumi-aws sns.TopicSubscription pending_confirmation); a fresh one always is.
            state.update(pendingConfirmation=args.inputs.get("protocol") in ("email", "email-json"))
        elif kind == "aws:dlm/lifecyclePolicy:LifecyclePolicy":
            # DLM policy ARNs: arn:<partition>:dlm:<region>:<account>:policy/<policy id> (policy-<17 hex>).
            state.update(arn=f"arn:aws:dlm:{FAKE_REGION}:{FAKE_ACCOUNT_ID}:policy/policy-0a1b2c3d4e5f60718")
        elif kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
            # pulumi-aws MetricAlarm: `name` autonamed when left out (policy/provider_defaults.py AUTONAMED), the id
            # is that name and `arn` the alarm's ARN (terraform-provider-aws internal/service/cloudwatch/
            # metric_alarm.go resourceMetricAlarmCreate d.SetId(alarm_name); resourceMetricAlarmRead sets `arn`
            # from DescribeAlarms' AlarmArn). The dashboard's alarm widget lists these ARNs.
            alarm_name = args.inputs.get("name") or autoname(args.name)
            state.update(name=alarm_name, arn=alarm_arn(alarm_name))
            return alarm_name, state
        elif kind == "aws:cloudwatch/eventRule:EventRule":
            # EventBridge rule ARNs on the default bus: arn:<partition>:events:<region>:<account>:rule/<name>.
            state.update(arn=f"arn:aws:events:{FAKE_REGION}:{FAKE_ACCOUNT_ID}:rule/{args.name}", name=args.name)
        elif kind == "aws:ec2/keyPair:KeyPair":
            state.update(keyName=args.name)
        elif kind == "aws:route53/record:Record":
            state.update(fqdn=args.inputs.get("name"))
        elif kind == "random:index/randomPassword:RandomPassword":
            # As pulumi-random's RandomPassword makes it (terraform-provider-random
            # internal/random/string.go CreateString): min_upper/min_lower/min_numeric/min_special
            # characters of each class, the rest of `length` from the enabled classes (upper, lower,
            # numeric, special all default true; special "!@#$%&*()-_=+[]{}<>:?" unless
            # override_special), shuffled. Seeded by the name: the same value on every run.
            rng = stdlib_random.Random(args.name)
            classes = {
                "Upper": ("upper", string.ascii_uppercase),
                "Lower": ("lower", string.ascii_lowercase),
                "Numeric": ("numeric", string.digits),
                "Special": ("special", args.inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"),
            }
            chars = [rng.choice(pool) for key, (_, pool) in classes.items() for _ in range(int(args.inputs.get(f"min{key}", 0)))]
            enabled = "".join(pool for flag, pool in classes.values() if args.inputs.get(flag, True))
            chars += [rng.choice(enabled) for _ in range(int(args.inputs["length"]) - len(chars))]
            rng.shuffle(chars)
            state.update(result="".join(chars))
        elif kind == "random:index/randomId:RandomId":
            # pulumi_random RandomId: byteLength random bytes, given as hex (2 digits a byte),
            # b64Std, b64Url (also the id) and dec. Derived from the name: stable across runs.
            raw = hashlib.sha256(args.name.encode()).digest()[: int(args.inputs.get("byteLength", 8))]
            b64_url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            state.update(
                hex=raw.hex(), b64Std=base64.b64encode(raw).decode(), b64Url=b64_url, dec=str(int.from_bytes(raw, "big"))
            )
            return b64_url, state
        elif kind == "random:index/randomBytes:RandomBytes":
            state.update(base64="c2VjcmV0LWNsaWVudC1ieXRlcy0yMA==", hex="00" * 20)
        elif kind == "command:remote:Command":
            state.update(stdout=FAKE_ACME_ACCOUNT_URI if args.name.endswith("-acme-account") else "", stderr="")
        elif kind.startswith("pulumi-python:dynamic/harbor:") and self.dynamic_update_preview:
            state = {key: rpc.UNKNOWN if value is None else value for key, value in state.items()}
            return (str(len(args.name)) if kind.endswith(":Registry") else f"{args.name}-id"), state
        elif kind == "pulumi-python:dynamic/harbor:Registry":
            # The provider's id is Harbor's registry id, a number (HarborRegistryProvider.create).
            state.update(registry_id=len(args.name), credential_hash="0" * 64)
            return str(len(args.name)), state
        elif kind == "pulumi-python:dynamic/ec2:ConsoleHostKey":
            state.update(public_key=FAKE_HOST_PUBLIC_KEY)
        elif kind == "pulumi-python:dynamic/harbor:Robot":
            # As Harbor answers a create (handler/robot.go): the prefixed name and a one-time secret.
            state.update(robot_id=7, robot_name=f"robot${args.inputs['name']}", secret="Robot-Secret-0123456789abcdef")
        elif kind == "pulumi-python:dynamic/harbor:Project":
            state.update(project_id=len(args.name) + 100)
        # Issue 13's stores: the computed outputs the program reads, in the shapes AWS returns
        # (bucket_prefix + a 26-character suffix; RDS's `address` is the endpoint without port;
        # a replication group with cluster mode disabled and transit encryption has a "master." endpoint).
        elif kind == "aws:s3/bucket:Bucket":
            bucket = f"{args.inputs.get('bucketPrefix', '')}20261128000000000000000001"
            state.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}", id=bucket)
            return bucket, state
        elif kind == "aws:rds/instance:Instance":
            identifier = f"{args.inputs.get('identifierPrefix', '')}20261128000000000000000002"
            address = f"{identifier}.c1a2b3c4d5e6.{FAKE_REGION}.rds.amazonaws.com"
            port = args.inputs.get("port", 5432)
            arn = f"arn:aws:rds:{FAKE_REGION}:123456789012:db:{identifier}"
            state.update(address=address, endpoint=f"{address}:{port}", arn=arn, identifier=identifier)
        elif kind == "aws:elasticache/replicationGroup:ReplicationGroup":
            # member_clusters: the group's nodes, which CreateReplicationGroup names <group id>-001, -002, ...
            group = f"{args.name}-id"
            members = [f"{group}-{n:03d}" for n in range(1, int(args.inputs.get("numCacheClusters", 1)) + 1)]
            state.update(primaryEndpointAddress=f"master.{args.name}.abc123.euc1.cache.amazonaws.com", memberClusters=members)
        elif kind == "aws:sns/topic:Topic":
            state.update(arn=f"arn:aws:sns:eu-central-1:123456789012:{args.name}")
        elif kind in ("aws:rds/subnetGroup:SubnetGroup", "aws:elasticache/subnetGroup:SubnetGroup"):
            state.setdefault("name", args.name)
        # Issue 13 step 3: the load balancer's computed outputs, as the AWS provider's schema names them
        # (pulumi_aws 7.x lb.LoadBalancer arn/arnSuffix/dnsName/zoneId, lb.TargetGroup arn/arnSuffix,
        # acm.Certificate arn/domainValidationOptions, acm.CertificateValidation certificateArn), in the
        # shapes AWS gives them: ELB ARNs "arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/
        # app/<name>/<16 hex>" whose CloudWatch dimension is the part after "loadbalancer/" (ELB User
        # Guide, "CloudWatch metrics for your Application Load Balancer"); an ALB's DNS name
        # "<name>-<digits>.<region>.elb.amazonaws.com" with the region's canonical hosted zone
        # (Z215JYRZR1TBD5 for eu-central-1, AWS General Reference "Elastic Load Balancing endpoints");
        # ACM's DNS validation option, one per name: a CNAME "_<hash>.<name>." to "_<hash>.<id>.acm-validations.aws."
        # (ACM User Guide, "DNS validation").
        elif kind == "aws:lb/loadBalancer:LoadBalancer":
            suffix = f"app/{args.name}/50dc6c495c0c9188"
            arn = f"arn:aws:elasticloadbalancing:{FAKE_REGION}:{FAKE_ACCOUNT_ID}:loadbalancer/{suffix}"
            state.update(arn=arn, arnSuffix=suffix, dnsName=FAKE_ALB_DNS_NAME, zoneId=FAKE_ALB_ZONE_ID)
            return arn, state
        elif kind == "aws:lb/targetGroup:TargetGroup":
            suffix = f"targetgroup/{args.name}/943f017f100becff"
            arn = f"arn:aws:elasticloadbalancing:{FAKE_REGION}:{FAKE_ACCOUNT_ID}:{suffix}"
            state.update(arn=arn, arnSuffix=suffix)
            return arn, state
        elif kind == "aws:lb/listener:Listener":
            listener = f"listener/app/{args.name}/50dc6c495c0c9188/f2f7dc8efc522ab2"
            arn = f"arn:aws:elasticloadbalancing:{FAKE_REGION}:{FAKE_ACCOUNT_ID}:{listener}"
            state.update(arn=arn)
            return arn, state
        elif kind == "aws:acm/certificate:Certificate":
            arn = f"arn:aws:acm:{FAKE_REGION}:{FAKE_ACCOUNT_ID}:certificate/0c1f2e3d-4b5a-6978-8a9b-0c1d2e3f4a5b"
            domain = args.inputs["domainName"]
            state.update(
                arn=arn,
                domainValidationOptions=[
                    {
                        "domainName": domain,
                        "resourceRecordName": f"_3f5a9c1e2b7d4f608a1c2e3d4b5a6978.{domain}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": "_7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d.zfyfvmchrl.acm-validations.aws.",
                    }
                ],
                status="PENDING_VALIDATION",
            )
            return arn, state
        elif kind == "aws:acm/certificateValidation:CertificateValidation":
            state.update(certificateArn=args.inputs["certificateArn"])
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        token = args.token
        if token == "aws:ec2/getSubnet:getSubnet":
            # The default VPC: FAKE_VPC_SUBNETS[i] is the default subnet of the region's i-th AZ (a, b, c).
            zones = [f"{FAKE_REGION}{letter}" for letter in "abc"]
            subnet_id = args.args.get("id")
            if subnet_id:
                zone = zones[FAKE_VPC_SUBNETS.index(subnet_id)] if subnet_id in FAKE_VPC_SUBNETS else zones[0]
            else:
                zone = args.args.get("availabilityZone", zones[0])
                subnet_id = FAKE_VPC_SUBNETS[zones.index(zone)] if zone in zones else FAKE_VPC_SUBNETS[0]
            cidr = FAKE_SUBNET_CIDRS[FAKE_VPC_SUBNETS.index(subnet_id)] if subnet_id in FAKE_VPC_SUBNETS else FAKE_SUBNET_CIDRS[0]
            return {"id": subnet_id, "vpcId": "vpc-0a1b2c3d", "availabilityZone": zone, "cidrBlock": cidr}
        if token == "aws:ec2/getSubnets:getSubnets":
            # The default VPC: one default subnet per AZ (aws:ec2/getSubnets returns ids and filters).
            return {"id": FAKE_REGION, "ids": list(FAKE_VPC_SUBNETS), "filters": args.args.get("filters", [])}
        if token == "aws:ec2/getVpc:getVpc":
            # aws:ec2/getVpc: cidrBlock is the primary block; cidrBlockAssociations lists every IPv4 block,
            # the primary first (EC2 DescribeVpcs CidrBlockAssociationSet).
            blocks = (FAKE_VPC_CIDR, *self.vpc_secondary_cidrs)
            associations = [
                {"associationId": f"vpc-cidr-assoc-{i:08x}", "cidrBlock": block, "state": "associated"}
                for i, block in enumerate(blocks)
            ]
            vpc_id = args.args.get("id") or "vpc-0a1b2c3d"
            return {"id": vpc_id, "cidrBlock": FAKE_VPC_CIDR, "cidrBlockAssociations": associations, "default": True}
        if token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0123456789abcdef0", "name": "ubuntu-noble-24.04-amd64-server-20261101"}
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": FAKE_ACCOUNT_ID, "arn": f"arn:aws:iam::{FAKE_ACCOUNT_ID}:user/deployer", "userId": "AIDA"}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "aws:route53/getZone:getZone":
            return {"zoneId": FAKE_ZONE_ID, "id": FAKE_ZONE_ID, "name": args.args.get("name")}
        return {}


@dataclass
class Registration:
    type: str
    name: str
    parent: str
    inputs: dict
    raw: dict
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    dependencies: list[str]
    additional_secret_outputs: list[str]
    ignore_changes: list[str]
    import_id: str = ""
    urn: str = ""
    # RegisterResourceRequest.propertyDependencies: input name -> URNs of the resources its value came from.
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # What the mocks answered (inputs and computed outputs): the state the engine would keep.
    outputs: dict = field(default_factory=dict)
    # The request's other resource options, as the engine receives them (aliases, provider, replaceOnChanges,
    # customTimeouts, deletedWith ...): what a move must leave alone too (tests/standins/registrations.py).
    options: dict = field(default_factory=dict)

    def secret_keys(self) -> set[str]:
        """Top-level input keys sent to the engine as secrets."""
        return {key for key, value in self.raw.items() if contains_secret(value)}


def unwrap_secrets(value: Any) -> Any:
    """Inputs as plain values; secrets arrive wrapped as {sig: secret-sig, value: ...}."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get(rpc._special_sig_key) == SECRET_SIG or any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


# RegisterResourceRequest fields (pulumi/proto resource.proto) that are resource options not captured above.
OPTION_FIELDS = (
    "aliases",
    "aliasSpecs",
    "aliasURNs",
    "provider",
    "providers",
    "replaceOnChanges",
    "customTimeouts",
    "deletedWith",
    "version",
    "pluginDownloadURL",
    "retainOnDelete",
    "hideDiffs",
    "replaceWith",
)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    inputs=unwrap_secrets(rpc.deserialize_properties(request.object)),
                    raw=json_format.MessageToDict(request.object),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    dependencies=list(request.dependencies),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    ignore_changes=list(request.ignoreChanges),
                    import_id=request.importId,
                    urn=response.urn,
                    property_dependencies={key: list(deps.urns) for key, deps in request.propertyDependencies.items()},
                    outputs=json_format.MessageToDict(response.object),
                    options={key: value for key, value in json_format.MessageToDict(request).items() if key in OPTION_FIELDS},
                )
            )
        return response


@dataclass
class ProgramRun:
    registrations: list[Registration]
    # (version, base URL) of every signature bundle the program asked for.
    bundle_fetches: list[tuple[str, str]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    namespace: dict[str, Any] = field(default_factory=dict)

    def of_type(self, kind: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == kind]

    def one(self, kind: str) -> Registration:
        found = self.of_type(kind)
        assert len(found) == 1, f"expected one {kind}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Registration:
        found = [r for r in self.registrations if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]


def dev_config(path: Path = FIXTURE_STACK) -> dict[str, Any]:
    """The test suite's dev stack (tests/stacks/Pulumi.dev.yaml) keyed as the engine keys them (project:key).

    Never the Pulumi.dev.yaml at the repository's root: that one is the user's environment.
    """
    return dict(yaml.safe_load(path.read_text())["config"])


def run_program(
    config: dict[str, Any],
    stack: str = "dev",
    preview: bool = False,
    secret_keys: tuple[str, ...] = (),
    recorder: dict | None = None,
    organization: str | None = None,
) -> ProgramRun:
    """Runs __main__.py as the engine would, with `config` as the stack's configuration.

    `recorder` receives the registration list before the program runs, so a test can inspect
    what was registered even when the program raises.
    """
    mocks = AwsMocks()
    monitor = RecordingMonitor(mocks)
    if recorder is not None:
        recorder["registrations"] = monitor.registrations
    pulumi.runtime.set_mocks(
        mocks, project="harbor-cache", stack=stack, preview=preview, monitor=monitor, organization=organization
    )
    # The CLI copies every Pulumi.yaml default the stack does not set into the stack's config before
    # the program runs (pulumi/pulumi pkg/workspace/config.go, ValidateStackConfigAndApplyProjectConfig
    # -> mergeConfig: `stackConfig.Set(key, default)`), so the program cannot tell a default from a
    # value the stack sets. So here too.
    defaults = {f"harbor-cache:{key}": value for key, value in project_defaults().items()}
    config = {**defaults, **config}
    # The engine hands the program strings; objects and lists arrive as JSON.
    as_strings = {key: value if isinstance(value, str) else _json(value) for key, value in config.items()}
    runtime_config.set_all_config(as_strings, list(secret_keys))
    run = ProgramRun(registrations=monitor.registrations)

    def signed_stand_in(version: str, base_url: str, pin: str = "", offline: bool = False):
        run.bundle_fetches.append((version, base_url))
        return installer_signature.SignedInstaller(
            FAKE_SIGNED_INSTALLER_SHA256, installer_signature.bundle_url(base_url, version)
        )

    @pulumi.runtime.test
    def program():
        with mock.patch.object(installer_signature, "release_signed_sha256", signed_stand_in):
            run.namespace = runpy.run_path(str(MAIN), run_name="__pulumi_main__")
        cache = run.namespace["cache"]

        async def collect():
            for key, value in cache.outputs.items():
                output = pulumi.Output.from_input(value)
                run.outputs[key] = await output.future()
                if await output.is_secret():
                    run.secret_outputs.add(key)

        return pulumi.Output.from_input(collect())

    program()
    return run


def _json(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)
