"""harbor-cache's promises as mandatory policies: deny by default, one check per resource type.

`ALLOWED` is the table of every resource type the program creates (tests derive the list from the
program under mocks and compare), each with the one function that judges it. Any other type is
refused by `only-the-programs-resource-types`, with the reason for the types a review tried
(`REFUSED_WITH_REASON`). Values a check needs but cannot read fail closed and say why: an
unparseable policy document or CIDR always, a value unknown at preview too, except the few fields
(`KNOWN_ONLY_AT_UP`) that the program's own resources take from resources created in the same
update; those are judged at `up` (where the engine hands the analyzer known inputs and a mandatory
violation stops the resource before it is created) and their origin at preview by the stack checks
(property dependencies, known at preview). Exemptions belong to resources the program creates,
recognised by their URN (component and name), never by a tag alone: `tags` may not carry the
program's `harbor-cache:` prefix (components/settings/readers.py), and a tag on any other resource counts
for nothing.

Every message says what to change. tests/policy/test_policies.py and tests/policy/test_policy_bypass.py run
the pack through the analyzer's gRPC protocol as the engine does.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy as policy_proxy

PROJECT = "harbor-cache"
PROGRAM_TAG_PREFIX = "harbor-cache:"
PUBLIC_ACCESS_TAG = "harbor-cache:allow-public-access"
NODE_SCRATCH_TAG = "harbor-cache:node-scratch"
# Set by the program on the instance in storage s3 mode (components/aws/tagging.py, same name): the host
# firewall lets only the registry's containers reach IMDS, so hop limit 2 serves the registry alone.
IMDS_GUARD_TAG = "harbor-cache:imds-registry-only"
MAX_IMDS_HOP_LIMIT = 1  # Traefik runs on the host network; containers one hop away must not reach IMDS
# storage: s3: the registry on Harbor's bridge network is one hop away; only with IMDS_GUARD_TAG.
MAX_GUARDED_IMDS_HOP_LIMIT = 2
# TLS 1.2 or 1.3 minimum, TLS 1.3 offered: ELB's TLS13-1-2-* and TLS13-1-3-* policies (ELB User Guide,
# "Security policies for your Application Load Balancer"). Unset, an HTTPS listener gets
# ELBSecurityPolicy-2016-08, which still speaks TLS 1.0.
TLS_POLICY_RE = re.compile(r"ELBSecurityPolicy-TLS13-1-[23]-[\w-]+")
# Harbor nodes behind the load balancer serve plain HTTP here (harbor.yml http.port).
NODE_HTTP_PORT = 8080
METRICS_PORT = 9090
DATABASE_PORTS = (5432, 6379)
# The ports the program's security groups admit, and from what.
ADDRESS_PORTS = (22, METRICS_PORT)  # address blocks, never all of them
WEB_PORTS = (443, 80)  # address blocks; all of them only on the program's web group with allowPublicAccess
GROUP_ONLY_PORTS = (NODE_HTTP_PORT, *DATABASE_PORTS)  # other security groups only
WORLD_V4, WORLD_V6 = ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")

# The one permission the instance role holds: Traefik's DNS-01 challenge through lego's route53
# provider. Spelled exactly: IAM matches actions case-insensitively and with wildcards, so
# `route53:changeresourcerecordsets` or `route53:Change*` would grant it (or more) unnoticed.
DNS01_CHANGE = "route53:ChangeResourceRecordSets"
# Traefik is given the zone id (AWS_HOSTED_ZONE_ID), so ListHostedZonesByName is not part of the design.
DNS01_ACTIONS = (DNS01_CHANGE, "route53:ListResourceRecordSets", "route53:GetChange")
DNS01_NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
DNS01_TYPES_KEY = "route53:ChangeResourceRecordSetsRecordTypes"
ACME_PREFIX = "_acme-challenge."
HOSTED_ZONE_ARN_RE = re.compile(r"arn:aws[\w-]*:route53:::hostedzone/[A-Z0-9]{1,32}")
# The VM's metrics reporter (components/aws/alarms.py) may put metrics into its stack's namespace only
# (components/vm/operate_files.py metrics_namespace): the stack is the one in the policy's URN.
METRICS_ACTION = "cloudwatch:PutMetricData"
METRICS_NAMESPACE_PREFIX = "HarborCache"
# The only managed policy the program attaches: AWS's service policy for the DLM snapshot role.
DLM_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
EC2_SERVICE, DLM_SERVICE = "ec2.amazonaws.com", "dlm.amazonaws.com"
# storage: s3 (issue 13): the registry's actions from distribution's s3 driver docs
# (docs/content/storage-drivers/s3.md, "S3 permission scopes"), only on the program's bucket.
REGISTRY_S3_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
REGISTRY_S3_OBJECT_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
)
BUCKET_ARN_RE = re.compile(r"arn:aws[\w-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")
# IAM policy grammar (IAM User Guide, "IAM JSON policy element reference"): what a document may hold.
DOCUMENT_KEYS = {"Version", "Id", "Statement"}
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}

# What a credential looks like on a command line, in an environment, in triggers or in user data.
CREDENTIAL_PATTERNS = (
    # NAME=value / name: value with a credential-ish name: DB_PASS=, PASS=, PWD=, DOCKER_PASSWORD=, API_KEY=...
    re.compile(r"(?i)\b[\w-]*(pass(word|wd)?|pwd|secret|token|api[_-]?key|credentials?)[\w-]*\s*[=:]\s*\S+"),
    # --password x, --password=x, --pass x (not --password-stdin, which is the sanctioned way).
    re.compile(r"(?i)(^|\s)--?pass(word|wd)?(=|\s+)(?!-)\S+"),
    # -p <secret> / -p<secret> after a login, a user (-u) or a tool whose -p is a password
    # (docker/podman/skopeo login, sshpass, mysql...); not `-p 443:443`, `mkdir -p /data`.
    re.compile(
        r"(?i)(\blogin\b|\bsshpass\b|\bmysql\w*|\bmariadb\w*|\s-u\s*\S+)[^;&|\n]*?\s-p\s*"
        r"(?![/.~$-]|\d+(:\d+)*(/\w+)?(\s|$))\S+"
    ),
    # curl/wget -u user:password, --user user:password (curl's man page: "-u, --user <user:password>").
    re.compile(r"(?i)(^|\s)(-u|--user|--proxy-user)(=|\s*)['\"]?[^\s:'\"]+:[^\s'\"]+"),
    # An Authorization header (Basic, Bearer, token ...) with its value.
    re.compile(r"(?i)\b(proxy-)?authorization\s*:\s*\S+"),
    # user:password@ in a URL (RFC 3986 userinfo).
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/@:]+:[^\s/@]+@"),
    # redis-cli -a <password> / --pass; htpasswd -b <file> <user> <password> (batch mode: the password
    # on the command line, htpasswd(1)).
    re.compile(r"(?i)\bredis-cli\b[^;&|\n]*?\s(-a|--pass)\s+\S+"),
    re.compile(r"\bhtpasswd\b[^;&|\n]*?\s-[a-zA-Z]*b[a-zA-Z]*\s"),  # -b, not -B (bcrypt): case matters
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b(ghp|gho|ghs|github_pat|dckr_pat|glpat)_[A-Za-z0-9_-]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
)
COMMAND_FIELDS = ("create", "update", "delete", "environment", "triggers")

UNKNOWN_SENTINELS = frozenset(
    {
        policy_proxy.UNKNOWN_BOOLEAN_VALUE,
        policy_proxy.UNKNOWN_NUMBER_VALUE,
        policy_proxy.UNKNOWN_STRING_VALUE,
        policy_proxy.UNKNOWN_ARRAY_VALUE,
        policy_proxy.UNKNOWN_ASSET_VALUE,
        policy_proxy.UNKNOWN_ARCHIVE_VALUE,
        policy_proxy.UNKNOWN_OBJECT_VALUE,
    }
)

Violation = str


# ---------------------------------------------------------------------------------------------
# What a check sees, and how it fails closed


class Undecidable(Exception):
    """A value a check needs is unknown (at preview) or cannot be parsed: the check fails closed."""

    def __init__(self, path: str, why: str, unknown: bool = False) -> None:
        super().__init__(f"{path}: {why}")
        self.path, self.why, self.unknown = path, why, unknown

    @property
    def field(self) -> str:
        return re.split(r"[.\[]", self.path, maxsplit=1)[0]


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def known(value: Any, path: str) -> Any:
    """The value, or Undecidable when the engine does not know it yet (a preview of a value that
    comes from a resource created in the same update)."""
    if is_unknown(value):
        raise Undecidable(path, "is unknown at preview (it comes from a resource not created yet)", unknown=True)
    return value


def plain(value: Any) -> Any:
    """The analyzer's properties without pulumi_policy's unknown-raising proxies: unknowns stay the
    engine's sentinel strings, so a check decides what an unknown means instead of the SDK turning
    it into an advisory note (pulumi_policy/policy.py Analyze catches UnknownValueError)."""
    if isinstance(value, (policy_proxy._DictProxy, policy_proxy._ListProxy)):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Urn:
    """urn:pulumi:<stack>::<project>::<parent types $ type>::<name> (pulumi sdk/go/common/resource/urn)."""

    stack: str
    project: str
    types: tuple[str, ...]
    name: str

    @classmethod
    def parse(cls, urn: str) -> Urn | None:
        parts = urn.split("::", 3) if urn.startswith("urn:pulumi:") else []
        if len(parts) != 4:
            return None
        return cls(parts[0].removeprefix("urn:pulumi:"), parts[1], tuple(parts[2].split("$")), parts[3])


def component(name: str) -> str:
    return f"{PROJECT}:index:{name}"


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False

    def made_by(self, owner: str, name_re: str) -> bool:
        """Whether this is the program's resource: under HarborCache and the component `owner`, named as it names them."""
        urn = Urn.parse(self.urn)
        return (
            urn is not None
            and urn.project == PROJECT
            and urn.types == (component("HarborCache"), component(owner), self.type)
            and re.fullmatch(name_re, urn.name) is not None
        )

    @property
    def tags(self) -> Mapping[str, Any]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}


def _dry_run() -> bool:
    # The engine starts the pack with PULUMI_DRY_RUN (sdk/go/common/resource/plugin/analyzer_plugin.go constructEnv).
    return os.environ.get("PULUMI_DRY_RUN") == "true"


# The program's own resources whose fields legitimately hold unknowns at a preview of a fresh stack
# (they name resources created in the same update): (type, owner component, name pattern) -> fields.
# At preview the stack checks judge where those values come from; at `up` the values are known and
# the resource's check judges them before the engine creates it.
KNOWN_ONLY_AT_UP: dict[tuple[str, str, str], frozenset[str]] = {
    ("command:remote:Command", "HarborInstall", r"[\w.-]+"): frozenset({"connection", "create", "triggers"}),
    ("command:remote:Command", "HarborProbe", r"[\w.-]+"): frozenset({"connection", "create", "triggers"}),
    ("command:remote:Command", "HarborCaa", r"[\w.-]+"): frozenset({"connection", "create", "triggers"}),
    ("aws:iam/rolePolicy:RolePolicy", "HarborStorage", r"[\w-]+-registry-access"): frozenset({"policy"}),
    ("aws:s3/bucketPolicy:BucketPolicy", "HarborStorage", r"[\w-]+-tls-only"): frozenset({"policy"}),
    ("aws:route53/record:Record", "HarborLoadBalancer", r"[\w-]+-certificate-validation"): frozenset({"name", "type", "records"}),
    ("aws:route53/record:Record", "HarborDns", r"[\w-]+"): frozenset({"aliases"}),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "HarborAlarms", r"[\w-]+"): frozenset(
        {"alarmActions", "okActions", "insufficientDataActions"}
    ),
}


def _deferred(resource: Resource, problem: Undecidable) -> bool:
    if not (problem.unknown and _dry_run()):
        return False
    return any(
        kind == resource.type and problem.field in fields and resource.made_by(owner, name_re)
        for (kind, owner, name_re), fields in KNOWN_ONLY_AT_UP.items()
    )


class Review:
    """Collects one resource's problems field by field, so one undecidable field fails closed
    without hiding the others."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.problems: list[Violation] = []

    def judge(self, judge: Callable[[], Iterable[Violation]]) -> None:
        try:
            self.problems += list(judge())
        except Undecidable as problem:
            if not _deferred(self.resource, problem):
                self.problems.append(
                    f"cannot check {self.resource.type} {self.resource.name!r}: {problem.path} {problem.why}; "
                    "the pack refuses what it cannot check: give it a value known at preview"
                )


def _as_list(value: Any, path: str) -> list:
    value = known(value, path)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _number(value: Any, path: str, default: float | None = None) -> float:
    value = known(value, path)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Undecidable(path, f"is {value!r}, not a number")
    return value


def _network(block: Any, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    block = known(block, path)
    try:
        return ipaddress.ip_network(str(block), strict=False)
    except ValueError:
        raise Undecidable(path, f"is {block!r}, not a CIDR block") from None


def _covers_everything(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the union of the blocks is all of IPv4 or all of IPv6: 0.0.0.0/1 + 128.0.0.0/1 is the world too."""
    networks = list(networks)
    return any(
        list(ipaddress.collapse_addresses(n for n in networks if n.version == world.version)) == [world]
        for world in (WORLD_V4, WORLD_V6)
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        # Python keeps the last, another parser the first: a document that reads two ways is refused.
        raise ValueError(f"duplicate keys {duplicates}")
    return dict(pairs)


def statements(document: Any, path: str) -> list[dict[str, Any]]:
    """The statements of an IAM policy document, parsed strictly: unknown, unparseable or outside the
    IAM grammar fails closed."""
    document = known(document, path)
    if isinstance(document, str):
        try:
            document = json.loads(document, object_pairs_hook=_no_duplicate_keys)
        except ValueError as error:
            raise Undecidable(path, f"is not a JSON policy document ({error})") from None
    if not isinstance(document, Mapping) or set(document) - DOCUMENT_KEYS or "Statement" not in document:
        raise Undecidable(
            path,
            f"is not an IAM policy document (it is {type(document).__name__}"
            f"{' with keys ' + str(sorted(document)) if isinstance(document, Mapping) else ''})",
        )
    found = document["Statement"]
    found = [found] if isinstance(found, Mapping) else found
    if not isinstance(found, list) or not all(isinstance(s, Mapping) for s in found):
        raise Undecidable(path, "Statement is neither a statement nor a list of statements")
    for index, statement in enumerate(found):
        extra = set(statement) - STATEMENT_KEYS
        if extra or statement.get("Effect") not in ("Allow", "Deny"):
            raise Undecidable(f"{path}.Statement[{index}]", f"is outside IAM's grammar (keys {sorted(statement)})")
    return [dict(s) for s in found]


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a value with its path; an unknown anywhere is Undecidable."""
    value = known(value, path)
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            for where, text in _strings(item, f"{path}.{key}"):
                yield where, f"{key}={text}"
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _credential_in(value: Any, path: str) -> bool:
    return any(pattern.search(text) for _, text in _strings(value, path) for pattern in CREDENTIAL_PATTERNS)


def _action_matches(pattern: str, action: str) -> bool:
    """IAM's matching: case-insensitive, `*` and `?` wildcards and nothing else (no fnmatch `[...]` classes;
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html)."""
    wildcards = {"*": ".*", "?": "."}
    regex = "".join(wildcards.get(char, re.escape(char)) for char in str(pattern))
    return re.fullmatch(regex, action, re.IGNORECASE | re.DOTALL) is not None


# ---------------------------------------------------------------------------------------------
# One check per type


def nothing_to_check(_review: Review) -> None:
    """Allowed as the program makes it: no setting of this type widens what the stack exposes."""


def default_provider(review: Review) -> None:
    """The engine's default provider (the program declares none): named default[_<version>] by the
    engine (pkg/resource/deploy/providers/registry.go), never pointed at other endpoints."""
    resource = review.resource
    urn = Urn.parse(resource.urn)
    if urn is None or re.fullmatch(r"default(_[\w-]+)?", urn.name) is None:
        review.problems.append(
            f"provider {resource.name!r} is declared by the program: harbor-cache uses only the engine's default providers"
        )

    def endpoints() -> list[Violation]:
        custom = [
            key
            for key in ("endpoints", "insecure", "customCaBundle", "httpProxy", "httpsProxy")
            if known(resource.props.get(key), key)
        ]
        return [f"the provider sets {custom}: requests (and their signatures) would go elsewhere; remove them"] if custom else []

    review.judge(endpoints)


def _imds_options(options: Any, guarded: bool, path: str = "metadataOptions") -> list[Violation]:
    options = known(options, path) or {}
    problems = []
    if known(options.get("httpTokens"), f"{path}.httpTokens") != "required":
        problems.append("IMDSv1 is allowed: set metadata_options.http_tokens='required'")
    if known(options.get("httpProtocolIpv6"), f"{path}.httpProtocolIpv6") == "enabled":
        problems.append(
            "the IPv6 IMDS endpoint [fd00:ec2::254] is enabled: containers reach it outside the IPv4 guard; "
            "leave metadata_options.http_protocol_ipv6 disabled"
        )
    # Unset, the hop limit is the AMI's or the account's default (2 for many current AMIs). Over the
    # analyzer's gRPC the number arrives as a protobuf Struct double (1.0), not an int.
    hop_limit = known(options.get("httpPutResponseHopLimit"), f"{path}.httpPutResponseHopLimit")
    allowed = MAX_GUARDED_IMDS_HOP_LIMIT if guarded else MAX_IMDS_HOP_LIMIT
    if isinstance(hop_limit, bool) or not isinstance(hop_limit, int | float) or hop_limit > allowed:
        if guarded:
            reason = (
                f"even with {IMDS_GUARD_TAG}, 2 is the most: the registry is one hop away, and a higher limit "
                "lets the token travel further than the host"
            )
        else:
            reason = (
                "above 1, every container on a bridge network reaches the instance role and the user data; "
                f"2 only for storage s3, whose instance carries {IMDS_GUARD_TAG}=true (the registry-only firewall guard)"
            )
        problems.append(f"IMDS hop limit is {hop_limit}: set metadata_options.http_put_response_hop_limit={allowed} ({reason})")
    return problems


def ec2_instance(review: Review) -> None:
    """IMDSv2 with hop limit 1 (2 with the registry-only guard), no IPv6 IMDS endpoint, encrypted
    disks, no launch template, user data without credentials. Which role it runs as: stack check
    `instances-run-as-the-programs-role`."""
    props = review.resource.props
    guarded = review.resource.tags.get(IMDS_GUARD_TAG) == "true"
    review.judge(lambda: _imds_options(props.get("metadataOptions"), guarded))

    def disks() -> list[Violation]:
        problems = []
        if (known(props.get("rootBlockDevice"), "rootBlockDevice") or {}).get("encrypted") is not True:
            problems.append("root volume is not encrypted: set root_block_device.encrypted=True")
        for index, device in enumerate(_as_list(props.get("ebsBlockDevices"), "ebsBlockDevices")):
            if known(device, f"ebsBlockDevices[{index}]").get("encrypted") is not True:
                problems.append(f"EBS block device {device.get('deviceName')} is not encrypted: set encrypted=True")
        return problems

    def launch_template() -> list[Violation]:
        if known(props.get("launchTemplate"), "launchTemplate"):
            return [
                "the instance starts from a launch template, whose metadata options and user data the pack does not see: "
                "remove it"
            ]
        return []

    def user_data() -> list[Violation]:
        problems = []
        if known(props.get("userDataBase64"), "userDataBase64"):
            problems.append("user_data_base64 hides the user data from review: pass user_data as text")
        if _credential_in(props.get("userData"), "userData"):
            problems.append(
                "the user data carries what looks like a password, token or key: every process that reaches IMDS "
                "reads it, and EC2 shows it to anyone with ec2:DescribeInstanceAttribute; send secrets over SSH on stdin"
            )
        return problems

    for judge in (disks, launch_template, user_data):
        review.judge(judge)


def ebs_volume(review: Review) -> None:
    """Encrypted, and protected: only the scratch volumes of Harbor nodes 1..N-1, which the program
    names <vm>-<i>-data under HarborVm and tags so, go with their node."""
    resource = review.resource
    if known(resource.props.get("encrypted"), "encrypted") is not True:
        review.problems.append("EBS volume is not encrypted: set encrypted=True")
    if resource.protect:
        return
    scratch = (
        resource.tags.get(NODE_SCRATCH_TAG) == "true"
        and resource.made_by("HarborVm", r"[\w-]+-[1-9][0-9]*-data")
        and not resource.props.get("snapshotId")
    )
    if not scratch:
        review.problems.append(
            "the data volume can be replaced or deleted by an update: create it with protect=True (and retain_on_delete=True)"
        )


@dataclass(frozen=True)
class Rule:
    """A security group's inline rule, read strictly: a single tcp port or not, and its address blocks."""

    index: int
    where: str
    port: int | None  # None unless the rule is exactly one tcp port
    shape: str
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    props: Mapping[str, Any]


def _rules(value: Any, path: str) -> list[Rule]:
    rules = []
    for index, rule in enumerate(_as_list(value, path)):
        where = f"{path}[{index}]"
        rule = known(rule, where)
        protocol = str(known(rule.get("protocol"), f"{where}.protocol")).lower()
        low = _number(rule.get("fromPort"), f"{where}.fromPort", 0)
        high = _number(rule.get("toPort"), f"{where}.toPort", 65535)
        networks = [
            _network(block, f"{where}.{key}[{i}]")
            for key in ("cidrBlocks", "ipv6CidrBlocks")
            for i, block in enumerate(_as_list(rule.get(key), f"{where}.{key}"))
        ]
        single = protocol in ("tcp", "6") and low == high
        rules.append(
            Rule(index, where, int(low) if single else None, f"protocol {protocol!r} ports {low:g}-{high:g}", networks, rule)
        )
    return rules


def _ingress_problems(resource: Resource, rules: list[Rule]) -> list[Violation]:
    problems: list[Violation] = []
    blocks: dict[int, list] = {}
    for rule in rules:
        port = rule.port
        if port is None:
            problems.append(f"ingress rule {rule.index} admits {rule.shape}: harbor-cache admits single tcp ports only")
            continue
        if _as_list(rule.props.get("prefixListIds"), f"{rule.where}.prefixListIds") or known(
            rule.props.get("self"), f"{rule.where}.self"
        ):
            problems.append(
                f"ingress rule {rule.index} admits a prefix list or the group itself on {port}: the pack cannot see "
                "what a prefix list holds; list address blocks or security groups"
            )
        if port in GROUP_ONLY_PORTS:
            if rule.networks:
                problems.append(
                    f"port {port} admits address blocks: it takes traffic only from the program's security groups "
                    "(the load balancer's, the nodes')"
                )
        elif port in (*ADDRESS_PORTS, *WEB_PORTS):
            blocks.setdefault(port, []).extend(rule.networks)
        else:
            problems.append(
                f"ingress on port {port}: harbor-cache admits only {sorted({*ADDRESS_PORTS, *WEB_PORTS, *GROUP_ONLY_PORTS})}"
            )
    behind_load_balancer = any(rule.port == NODE_HTTP_PORT and rule.props.get("securityGroups") for rule in rules)
    if behind_load_balancer and any(blocks.get(port) for port in WEB_PORTS):
        problems.append(
            "the Harbor nodes' security group admits address blocks on 443/80: nodes behind the load balancer "
            "take web traffic only from its security group"
        )
    world = [port for port, networks in blocks.items() if _covers_everything(networks)]
    public = resource.tags.get(PUBLIC_ACCESS_TAG) == "true" and (
        resource.made_by("HarborVm", r"[\w-]+-sg") or resource.made_by("HarborLoadBalancer", r"[\w-]+-sg")
    )
    for port in world:
        if port == 22:
            problems.append(
                "port 22 is open to 0.0.0.0/0 or ::/0 (by the union of its blocks): list your addresses in sshAllowedCidrs"
            )
        elif port == METRICS_PORT:
            problems.append(f"port {METRICS_PORT} (metrics) is open to every address: list your scrapers in metricsAllowedCidrs")
        elif not public:
            problems.append(
                f"port {port} is open to the world, which makes the proxy projects an open pull-through cache: "
                "restrict allowedCidrs, or set allowPublicAccess: true if that is intended (it marks the program's own web group)"
            )
    return problems


def _egress_problems(rules: list[Rule]) -> list[Violation]:
    return [f"egress rule {rule.index} lets out {rule.shape}: single tcp ports only" for rule in rules if rule.port is None]


def ec2_security_group(review: Review) -> None:
    """Ingress: single tcp ports; 22 and metrics from address blocks that are not the world; 443/80
    from the world only on the program's web group with allowPublicAccess; Harbor's 8080 and the
    databases only from security groups; no prefix lists. Egress: single tcp ports."""
    props = review.resource.props
    review.judge(lambda: _ingress_problems(review.resource, _rules(props.get("ingress"), "ingress")))
    review.judge(lambda: _egress_problems(_rules(props.get("egress"), "egress")))


def _dns01_problems(statement: Mapping[str, Any], path: str) -> list[Violation]:
    problems = []
    resources = _as_list(statement.get("Resource"), f"{path}.Resource")
    if len(resources) != 1 or not isinstance(resources[0], str) or not HOSTED_ZONE_ARN_RE.fullmatch(resources[0]):
        problems.append(f"{DNS01_CHANGE} must name exactly one hosted zone ARN, not {resources}: scope it to the stack's zone")
    condition = statement.get("Condition") or {}
    equals = condition.get("ForAllValues:StringEquals") or {} if isinstance(condition, Mapping) else {}
    names = equals.get(DNS01_NAMES_KEY) if isinstance(equals, Mapping) else None
    names = names if isinstance(names, list) else [names]
    if (
        set(condition) != {"ForAllValues:StringEquals"}
        or len(names) != 1
        or not isinstance(names[0], str)
        or not names[0].startswith(ACME_PREFIX)
        or any(char in names[0] for char in "*?")
    ):
        problems.append(
            f"{DNS01_CHANGE} must be limited to one name, _acme-challenge.<hostname>, with a ForAllValues:StringEquals "
            f"condition on {DNS01_NAMES_KEY} (and nothing else)"
        )
    if isinstance(equals, Mapping) and equals.get(DNS01_TYPES_KEY) not in (["TXT"], "TXT"):
        problems.append(f"{DNS01_CHANGE} must be limited to TXT records with {DNS01_TYPES_KEY} = ['TXT']")
    return problems


def _registry_bucket_statement(statement: Mapping[str, Any]) -> bool:
    """True for the registry's S3 grant: its exact actions on named buckets (or those buckets' objects).
    Which bucket: stack check `registry-grant-names-the-programs-bucket`."""
    actions, resources = _as_list(statement.get("Action"), "Action"), _as_list(statement.get("Resource"), "Resource")
    if not actions or not resources or "Condition" in statement:
        return False
    if all(a in REGISTRY_S3_BUCKET_ACTIONS for a in actions):
        return all(isinstance(r, str) and BUCKET_ARN_RE.fullmatch(r) for r in resources)
    if all(a in REGISTRY_S3_OBJECT_ACTIONS for a in actions):
        return all(isinstance(r, str) and r.endswith("/*") and BUCKET_ARN_RE.fullmatch(r[:-2]) for r in resources)
    return False


def _statement_problems(statement: Mapping[str, Any], path: str, registry: bool, namespace: str) -> list[Violation]:
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement or "NotResource" in statement or "Principal" in statement or "NotPrincipal" in statement:
        return [
            "an Allow statement with NotAction/NotResource grants everything it does not name (and a role policy has no "
            f"Principal): list the actions ({', '.join(DNS01_ACTIONS)}) and resources instead"
        ]
    if any(str(action).startswith("s3:") for action in _as_list(statement.get("Action"), f"{path}.Action")):
        if registry and _registry_bucket_statement(statement):
            return []
        return [
            "S3 access is granted only by the program's registry policy (HarborStorage's registry-access), with the "
            "registry's actions on its bucket"
        ]
    problems = []
    for action in _as_list(statement.get("Action"), f"{path}.Action"):
        if action == DNS01_CHANGE:
            problems += _dns01_problems(statement, path)
        elif action in DNS01_ACTIONS:
            continue
        elif action == METRICS_ACTION:
            condition = statement.get("Condition") or {}
            condition_namespace = (
                (condition.get("StringEquals") or {}).get("cloudwatch:namespace") if isinstance(condition, Mapping) else None
            )
            if condition_namespace != namespace or set(condition) != {"StringEquals"}:
                problems.append(
                    f"{METRICS_ACTION} must be limited to the stack's namespace {namespace!r} with a StringEquals "
                    "condition on cloudwatch:namespace (another namespace is another stack's alarms)"
                )
        else:
            covered = [name for name in DNS01_ACTIONS if _action_matches(action, name)]
            if covered and not any(c in str(action) for c in "*?"):
                problems.append(f"IAM action {action!r} is {covered[0]} in another spelling: write it exactly so reviews see it")
            else:
                problems.append(
                    f"IAM action {action!r} widens the instance role beyond DNS-01 and metrics: only "
                    f"{', '.join((*DNS01_ACTIONS, METRICS_ACTION))} are allowed, spelled out (no wildcards)"
                )
    return problems


def iam_role_policy(review: Review) -> None:
    """The instance role's permissions: DNS-01 (one zone, one name, TXT), metrics into one namespace,
    and in the registry policy the registry's S3 actions. On which role: stack check."""
    resource = review.resource
    registry = resource.made_by("HarborStorage", r"[\w-]+-registry-access")
    urn = Urn.parse(resource.urn)
    namespace = f"{METRICS_NAMESPACE_PREFIX}/{urn.stack if urn else '<stack>'}"

    def document() -> list[Violation]:
        return [
            problem
            for index, statement in enumerate(statements(resource.props.get("policy"), "policy"))
            for problem in _statement_problems(statement, f"policy.Statement[{index}]", registry, namespace)
        ]

    review.judge(document)


def iam_role(review: Review) -> None:
    """Trusted by exactly one AWS service (EC2 for the instance role, DLM for the snapshot role),
    with no managed or inline policies of its own."""
    props = review.resource.props

    def trust() -> list[Violation]:
        found = statements(props.get("assumeRolePolicy"), "assumeRolePolicy")
        services = set()
        for statement in found:
            principal = statement.get("Principal")
            if (
                statement.get("Effect") != "Allow"
                or set(statement) - {"Sid", "Effect", "Principal", "Action", "Condition"}
                or statement.get("Action") not in ("sts:AssumeRole", ["sts:AssumeRole"])
                or not isinstance(principal, Mapping)
                or set(principal) != {"Service"}
                or principal["Service"] not in (EC2_SERVICE, DLM_SERVICE, [EC2_SERVICE], [DLM_SERVICE])
            ):
                return [
                    f"the role's trust policy must let exactly one service ({EC2_SERVICE} or {DLM_SERVICE}) sts:AssumeRole, "
                    f"nothing else (no AWS principals, no '*', no NotPrincipal): it has {statement}"
                ]
            services.add(str(_as_list(principal["Service"], "Principal.Service")[0]))
        return [] if len(services) == 1 else [f"the role must trust exactly one service, not {sorted(services) or 'none'}"]

    def own_policies() -> list[Violation]:
        problems = []
        if _as_list(props.get("managedPolicyArns"), "managedPolicyArns"):
            problems.append(f"the role carries managed_policy_arns {list(props['managedPolicyArns'])}: remove them")
        if any((policy or {}).get("policy") for policy in _as_list(props.get("inlinePolicies"), "inlinePolicies")):
            problems.append("the role carries inline_policies: remove them (the DNS-01 permission is its own RolePolicy)")
        return problems

    review.judge(trust)
    review.judge(own_policies)


def iam_role_policy_attachment(review: Review) -> None:
    """Only AWS's DLM service policy, only by the program's attachment; on which role: stack check."""
    arn = review.resource.props.get("policyArn")

    def attached() -> list[Violation]:
        if known(arn, "policyArn") != DLM_SERVICE_POLICY or not review.resource.made_by("HarborVm", r"[\w-]+-dlm-policy"):
            return [
                f"managed policy {arn} is attached to a role: only {DLM_SERVICE_POLICY}, by the program's snapshot "
                "role attachment"
            ]
        return []

    review.judge(attached)


def dlm_lifecycle_policy(review: Review) -> None:
    """Snapshots stay in this account and region: no cross-region copies, no sharing, no cross-account events."""
    props = review.resource.props

    def details() -> list[Violation]:
        policy = known(props.get("policyDetails"), "policyDetails") or {}
        problems = []
        if known(policy.get("policyType"), "policyDetails.policyType") not in (None, "EBS_SNAPSHOT_MANAGEMENT"):
            problems.append(f"DLM policy type {policy.get('policyType')!r}: only EBS_SNAPSHOT_MANAGEMENT")
        if policy.get("eventSource") or policy.get("actions"):
            problems.append("the DLM policy copies or acts on other accounts' events: remove event_source/actions")
        for index, schedule in enumerate(_as_list(policy.get("schedules"), "policyDetails.schedules")):
            if schedule.get("crossRegionCopyRules") or schedule.get("shareRules"):
                problems.append(
                    f"DLM schedule {index} copies snapshots to another region or shares them with other accounts: "
                    "the data volume's snapshots stay in this account"
                )
        return problems

    review.judge(details)


def load_balancer_listener(review: Review) -> None:
    """HTTPS with a TLS 1.2+/1.3 policy; plain HTTP only redirects to HTTPS."""
    props = review.resource.props

    def listener() -> list[Violation]:
        protocol = str(known(props.get("protocol"), "protocol") or "").upper()
        actions = _as_list(props.get("defaultActions"), "defaultActions")
        if protocol == "HTTP":
            redirects = all(
                action.get("type") == "redirect" and str((action.get("redirect") or {}).get("protocol", "")).upper() == "HTTPS"
                for action in actions
            )
            if not actions or not redirects:
                return ["an HTTP listener serves Harbor in plain text: its only action must redirect to HTTPS"]
            return []
        if protocol == "HTTPS":
            policy = known(props.get("sslPolicy"), "sslPolicy")
            if not isinstance(policy, str) or not TLS_POLICY_RE.fullmatch(policy):
                return [
                    f"the HTTPS listener's ssl_policy is {policy!r}: use a TLS 1.2+ policy with TLS 1.3 "
                    "(ELBSecurityPolicy-TLS13-1-2-2021-06 or another ELBSecurityPolicy-TLS13-1-2-*/1-3-*)"
                ]
            return []
        return [
            f"a load balancer listener with protocol {protocol or 'unset'!r}: harbor-cache serves only HTTPS (and 80 redirects)"
        ]

    review.judge(listener)


def load_balancer(review: Review) -> None:
    """An application load balancer with its own security group(s)."""
    props = review.resource.props

    def kind() -> list[Violation]:
        problems = []
        if known(props.get("loadBalancerType"), "loadBalancerType") not in (None, "application"):
            problems.append(
                f"load balancer type {props.get('loadBalancerType')!r}: harbor-cache uses an application load balancer"
            )
        if not _as_list(props.get("securityGroups"), "securityGroups") and props.get("securityGroups") is None:
            problems.append("the load balancer has no security group: give it the program's")
        return problems

    review.judge(kind)


def route53_record(review: Review) -> None:
    """The cache's name (A or alias), its CAA record and ACM's validation CNAME; never the DNS-01
    name, which only Traefik writes, and no delegation."""
    props = review.resource.props

    def record() -> list[Violation]:
        kind = str(known(props.get("type"), "type")).upper()
        name = str(known(props.get("name"), "name")).lower().rstrip(".")
        if kind not in ("A", "AAAA", "CAA", "CNAME"):
            return [f"a {kind} record: harbor-cache writes only A/AAAA, CAA and ACM's validation CNAME"]
        if name.startswith(ACME_PREFIX.rstrip(".")):
            return [f"a record for {name}: the DNS-01 name is Traefik's alone (it proves control of the name to any CA)"]
        if kind == "CNAME" and not (review.resource.made_by("HarborLoadBalancer", r"[\w-]+-certificate-validation")):
            return ["a CNAME outside the program's ACM validation record"]
        return []

    review.judge(record)


# An SNS topic, or EC2's own recover/reboot of the instance the alarm watches (CloudWatch User Guide,
# "Create alarms to stop, terminate, reboot, or recover an EC2 instance"): the status alarms do both.
ALARM_ACTION_RE = re.compile(r"arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+|arn:aws[\w-]*:automate:[\w-]+:ec2:(recover|reboot)")


def cloudwatch_metric_alarm(review: Review) -> None:
    """Alarm actions notify (SNS) or recover/reboot the instance; never stop or terminate it."""
    props = review.resource.props

    def actions() -> list[Violation]:
        problems = []
        for key in ("alarmActions", "okActions", "insufficientDataActions"):
            for index, arn in enumerate(_as_list(props.get(key), key)):
                if not ALARM_ACTION_RE.fullmatch(str(known(arn, f"{key}[{index}]"))):
                    problems.append(
                        f"alarm action {arn!r} in {key}: alarms only notify an SNS topic or recover/reboot the instance"
                    )
        return problems

    review.judge(actions)


def sns_topic(review: Review) -> None:
    """No topic policy: only the account's own principals publish or subscribe."""
    if review.resource.props.get("policy"):
        review.problems.append("the alarm topic carries a policy: remove it (the account's own principals suffice)")


def sns_topic_subscription(review: Review) -> None:
    """alarmEmail: an e-mail subscription (its owner confirms it); nothing that forwards alarms to endpoints or code."""
    protocol = review.resource.props.get("protocol")
    if protocol != "email":
        review.problems.append(f"an SNS subscription over {protocol!r}: alarms go to alarmEmail by e-mail only")


def s3_bucket(review: Review) -> None:
    """A private bucket that Pulumi does not empty on delete."""
    props = review.resource.props
    problems = []
    if props.get("acl") not in (None, "private"):
        problems.append(f"bucket ACL {props.get('acl')!r}: the bucket is private")
    for key in ("website", "policy", "grants", "corsRules"):
        if props.get(key):
            problems.append(f"the bucket sets {key}: the registry's bucket needs none (its policy is the TLS-only BucketPolicy)")
    if props.get("forceDestroy"):
        problems.append("force_destroy deletes every blob with the bucket: leave it off")
    review.problems += problems


def s3_bucket_policy(review: Review) -> None:
    """The bucket's policy only denies (the program's: no access without TLS); it never grants."""
    props = review.resource.props

    def only_denies() -> list[Violation]:
        if any(statement["Effect"] == "Allow" for statement in statements(props.get("policy"), "policy")):
            return ["the bucket policy grants access: it may only deny (the instance role's own policy grants the registry)"]
        return []

    review.judge(only_denies)


def s3_public_access_block(review: Review) -> None:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [key for key in keys if review.resource.props.get(key) is not True]
    if off:
        review.problems.append(f"the bucket's public access block leaves {off} off: set all four to true")


def s3_encryption(review: Review) -> None:
    rules = review.resource.props.get("rules") or []
    algorithms = [((rule or {}).get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") for rule in rules]
    if not algorithms or any(a not in ("AES256", "aws:kms", "aws:kms:dsse") for a in algorithms):
        review.problems.append("the bucket's default encryption is missing: set sse_algorithm AES256 (or aws:kms)")


def s3_ownership(review: Review) -> None:
    rule = review.resource.props.get("rule") or {}
    if rule.get("objectOwnership") != "BucketOwnerEnforced":
        review.problems.append("object ownership must be BucketOwnerEnforced (ACLs off)")


def s3_lifecycle(review: Review) -> None:
    """Only aborts incomplete uploads: an expiration or transition would delete or move the registry's blobs."""
    for index, rule in enumerate(review.resource.props.get("rules") or []):
        if any(
            rule.get(key) for key in ("expiration", "noncurrentVersionExpiration", "transitions", "noncurrentVersionTransitions")
        ):
            review.problems.append(f"lifecycle rule {index} expires or moves objects: only abort incomplete multipart uploads")


def rds_instance(review: Review) -> None:
    props = review.resource.props
    wanted = {"publiclyAccessible": False, "storageEncrypted": True, "deletionProtection": True, "skipFinalSnapshot": False}
    wrong = [f"{key}={props.get(key)!r}" for key, value in wanted.items() if bool(props.get(key)) is not value]
    if wrong:
        review.problems.append(
            f"the database sets {', '.join(wrong)}: it is private, encrypted, protected from deletion and snapshotted on delete"
        )


def elasticache_replication_group(review: Review) -> None:
    props = review.resource.props
    wrong = [key for key in ("transitEncryptionEnabled", "atRestEncryptionEnabled") if props.get(key) is not True]
    if wrong or not props.get("authToken"):
        review.problems.append(
            f"Redis must use TLS, encryption at rest and an AUTH token ({', '.join(wrong) or 'authToken'} missing)"
        )


def remote_command(review: Review) -> None:
    """No credential outside stdin, and SSH only to a pinned host key without a password.

    Pulumi's Python policy SDK hands policies unwrapped values, so a policy cannot see whether a
    value is marked secret; the rule is therefore the stronger one: nothing that looks like a
    credential in those fields at all. Secrets go on stdin (marked secret by the program).
    """
    props = review.resource.props

    def credentials() -> list[Violation]:
        for name in COMMAND_FIELDS:
            if _credential_in(props.get(name), name):
                return [
                    f"the remote command's {name} carries what looks like a password or token: "
                    "pass it on stdin as a Pulumi secret instead"
                ]
        return []

    def connection() -> list[Violation]:
        connection = known(props.get("connection"), "connection") or {}
        problems = []
        host_key = known(connection.get("hostKey"), "connection.hostKey")
        if not isinstance(host_key, str) or not host_key.strip():
            # pulumi-command accepts any host key without one (provider/pkg/provider/remote/connection.go:
            # ssh.InsecureIgnoreHostKey unless hostKey is set).
            problems.append(
                "the SSH connection has no host_key: pin the VM's key (ConsoleHostKey) so no secret goes to an unverified host"
            )
        if connection.get("password") or connection.get("proxy"):
            problems.append("the SSH connection uses a password or a proxy: connect with the stack's key, directly")
        return problems

    review.judge(credentials)
    review.judge(connection)


# Every type the program creates (tests/policy/test_policies.py derives the list from the program under
# mocks in each mode and compares), and the engine's own, each with its one check.
ALLOWED: dict[str, Callable[[Review], None]] = {
    # The engine's: the stack, the default providers of the packages the program uses.
    "pulumi:pulumi:Stack": nothing_to_check,
    "pulumi:providers:aws": default_provider,
    "pulumi:providers:command": default_provider,
    "pulumi:providers:random": default_provider,
    "pulumi:providers:tls": default_provider,
    "pulumi:providers:pulumi-python": default_provider,
    # The program's components (no inputs of their own).
    **{
        component(name): nothing_to_check
        for name in (
            "HarborCache",
            "HarborVm",
            "HarborInstall",
            "HarborConfig",
            "HarborDns",
            "HarborCaa",
            "HarborProbe",
            "HarborAlarms",
            "HarborStorage",
            "HarborDataServices",
            "HarborSharedSecrets",
            "HarborLoadBalancer",
        )
    },  # fmt: skip
    # The VM.
    "aws:ec2/instance:Instance": ec2_instance,
    "aws:ebs/volume:Volume": ebs_volume,
    "aws:ec2/volumeAttachment:VolumeAttachment": nothing_to_check,
    "aws:ec2/securityGroup:SecurityGroup": ec2_security_group,
    "aws:ec2/eip:Eip": nothing_to_check,
    "aws:ec2/eipAssociation:EipAssociation": nothing_to_check,
    "aws:ec2/keyPair:KeyPair": nothing_to_check,
    "aws:iam/role:Role": iam_role,
    "aws:iam/rolePolicy:RolePolicy": iam_role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": iam_role_policy_attachment,
    "aws:iam/instanceProfile:InstanceProfile": nothing_to_check,  # its role: stack check
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": dlm_lifecycle_policy,
    "pulumi-python:dynamic/ec2:ConsoleHostKey": nothing_to_check,
    "tls:index/privateKey:PrivateKey": nothing_to_check,
    "command:remote:Command": remote_command,
    # DNS, alarms.
    "aws:route53/record:Record": route53_record,
    "aws:cloudwatch/metricAlarm:MetricAlarm": cloudwatch_metric_alarm,
    "aws:sns/topic:Topic": sns_topic,
    "aws:sns/topicSubscription:TopicSubscription": sns_topic_subscription,
    # Harbor's configuration (dynamic providers) and generated secrets.
    "pulumi-python:dynamic/harbor:Registry": nothing_to_check,
    "pulumi-python:dynamic/harbor:Project": nothing_to_check,
    "pulumi-python:dynamic/harbor:OidcAuth": nothing_to_check,
    "pulumi-python:dynamic/harbor:GcSchedule": nothing_to_check,
    "pulumi-python:dynamic/harbor:Robot": nothing_to_check,
    "random:index/randomPassword:RandomPassword": nothing_to_check,
    "random:index/randomBytes:RandomBytes": nothing_to_check,
    "random:index/randomId:RandomId": nothing_to_check,
    "tls:index/selfSignedCert:SelfSignedCert": nothing_to_check,
    # storage: s3.
    "aws:s3/bucket:Bucket": s3_bucket,
    "aws:s3/bucketPolicy:BucketPolicy": s3_bucket_policy,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": s3_public_access_block,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": s3_encryption,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": s3_ownership,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": s3_lifecycle,
    # externalServices.
    "aws:rds/instance:Instance": rds_instance,
    "aws:rds/subnetGroup:SubnetGroup": nothing_to_check,
    "aws:elasticache/replicationGroup:ReplicationGroup": elasticache_replication_group,
    "aws:elasticache/subnetGroup:SubnetGroup": nothing_to_check,
    # replicas > 1: the load balancer.
    "aws:lb/loadBalancer:LoadBalancer": load_balancer,
    "aws:lb/listener:Listener": load_balancer_listener,
    "aws:lb/targetGroup:TargetGroup": nothing_to_check,
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": nothing_to_check,
    "aws:acm/certificate:Certificate": nothing_to_check,
    "aws:acm/certificateValidation:CertificateValidation": nothing_to_check,
}

# Types reviews used to get around the rules, with why they are refused (any other unknown type is
# refused as well, with the generic message).
_IMDS = "carries its own instance metadata options, which would bypass the IMDS rules of instances"
_RULES = "stand-alone rules are judged one by one; the program writes its rules inline in the group"
REFUSED_WITH_REASON: dict[str, str] = {
    "aws:ec2/launchTemplate:LaunchTemplate": _IMDS,
    "aws:ec2/spotInstanceRequest:SpotInstanceRequest": _IMDS,
    "aws:ec2/spotFleetRequest:SpotFleetRequest": _IMDS,
    "aws:ec2/fleet:Fleet": _IMDS,
    "aws:autoscaling/group:Group": _IMDS,
    "aws:ec2/instanceMetadataDefaults:InstanceMetadataDefaults": "sets every new instance's metadata defaults in the region",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "rewrites the VPC's default group, which any instance may join",
    "aws:ec2/managedPrefixList:ManagedPrefixList": "its entries are invisible to the rules that name it",
    "aws:ec2/securityGroupRule:SecurityGroupRule": _RULES,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _RULES,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _RULES,
    "aws:lb/listenerRule:ListenerRule": "may forward plain HTTP; the program's listeners have only default actions",
    "aws:alb/listener:Listener": "the program uses aws:lb/listener:Listener",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "attaches managed policies to any role",
    "aws:iam/policyAttachment:PolicyAttachment": "attaches a managed policy exclusively across roles, users and groups",
    "aws:iam/policy:Policy": "a managed policy can be attached anywhere; the program's permissions are role policies",
    "aws:iam/user:User": "the program creates no IAM users",
    "command:local:Command": "runs on the machine that runs pulumi, with its credentials; the program runs nothing locally",
}


def only_the_programs_types(resource: Resource) -> list[Violation]:
    if resource.type in ALLOWED:
        return []
    reason = REFUSED_WITH_REASON.get(resource.type, "the program does not create this type")
    return [
        f"{resource.type} is not a type harbor-cache creates ({reason}): the pack refuses every type outside its "
        "reviewed table (policy/harbor_policies.py ALLOWED); add the type there with its check if the program needs it"
    ]


def review_resource(resource: Resource) -> list[Violation]:
    """The one check of the resource's type (refused types are `only_the_programs_types`' business)."""
    check = ALLOWED.get(resource.type)
    if check is None:
        return []
    review = Review(resource)
    check(review)
    return review.problems


# ---------------------------------------------------------------------------------------------
# Stack checks: where values come from (property dependencies are known at preview)


@dataclass
class StackResource:
    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    property_dependencies: Mapping[str, list[str]] = field(default_factory=dict)

    def resource(self) -> Resource:
        return Resource(self.type, self.name, self.urn, self.props)


StackCheck = Callable[[list[StackResource]], list[Violation]]


def _by_urn(resources: list[StackResource]) -> dict[str, StackResource]:
    return {r.urn: r for r in resources}


def _trusted_service(role: StackResource | None) -> str | None:
    if role is None or role.type != "aws:iam/role:Role":
        return None
    try:
        found = statements(role.props.get("assumeRolePolicy"), "assumeRolePolicy")
    except Undecidable:
        return None
    services = {str(s.get("Principal", {}).get("Service")) for s in found if isinstance(s.get("Principal"), Mapping)}
    return services.pop() if len(services) == 1 and not iam_role_problems(role) else None


def iam_role_problems(role: StackResource) -> list[Violation]:
    review = Review(role.resource())
    iam_role(review)
    return review.problems


def _source(resource: StackResource, key: str, by_urn: dict[str, StackResource]) -> StackResource | None:
    """The one resource of the stack a property's value comes from, or None."""
    urns = resource.property_dependencies.get(key) or []
    return by_urn.get(urns[0]) if len(urns) == 1 else None


def instances_run_as_the_programs_role(resources: list[StackResource]) -> list[Violation]:
    """An instance's profile is the program's InstanceProfile, whose role trusts only EC2 (never a
    pre-existing profile, never a role trusted by anyone else)."""
    by_urn = _by_urn(resources)
    problems = []
    for instance in (r for r in resources if r.type == "aws:ec2/instance:Instance"):
        profile = _source(instance, "iamInstanceProfile", by_urn)
        role = _source(profile, "role", by_urn) if profile and profile.type == "aws:iam/instanceProfile:InstanceProfile" else None
        if _trusted_service(role) != EC2_SERVICE:
            problems.append(
                f"instance {instance.name!r} runs as {instance.props.get('iamInstanceProfile')!r}, which is not the program's "
                "instance profile of a role only EC2 assumes: give it the program's InstanceProfile"
            )
    return problems


def role_grants_land_on_the_right_role(resources: list[StackResource]) -> list[Violation]:
    """The DLM service policy and the DLM lifecycle policy use the role only DLM assumes; the
    instance role's policies (DNS-01, metrics, registry) land on the role only EC2 assumes."""
    by_urn = _by_urn(resources)
    wanted = {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", DLM_SERVICE),
        "aws:dlm/lifecyclePolicy:LifecyclePolicy": ("executionRoleArn", DLM_SERVICE),
        "aws:iam/rolePolicy:RolePolicy": ("role", EC2_SERVICE),
    }
    problems = []
    for resource in resources:
        if resource.type not in wanted:
            continue
        key, service = wanted[resource.type]
        if _trusted_service(_source(resource, key, by_urn)) != service:
            problems.append(
                f"{resource.type} {resource.name!r} sets {key} to {resource.props.get(key)!r}, not the program's role that only "
                f"{service} assumes"
            )
    return problems


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def registry_grant_names_the_programs_bucket(resources: list[StackResource]) -> list[Violation]:
    """A role policy that grants S3 (or is made from a bucket) is the program's registry policy, made
    from the bucket the program creates, and names that bucket only (not the Pulumi state bucket or any other)."""
    by_urn = _by_urn(resources)
    problems = []
    for policy in (r for r in resources if r.type == "aws:iam/rolePolicy:RolePolicy"):
        try:
            found = statements(policy.props.get("policy"), "policy")
        except Undecidable:
            found = []  # unknown: judged by where it comes from; unparseable: the resource check refuses it
        grants_s3 = any(str(action).startswith("s3:") for s in found for action in _listed(s.get("Action")))
        sources = [by_urn.get(urn) for urn in policy.property_dependencies.get("policy", [])]
        from_a_bucket = any(source is not None and source.type == "aws:s3/bucket:Bucket" for source in sources)
        if not (grants_s3 or from_a_bucket):
            continue
        bucket = _source(policy, "policy", by_urn)
        if (
            bucket is None
            or bucket.type != "aws:s3/bucket:Bucket"
            or not bucket.resource().made_by("HarborStorage", r"[\w-]+-bucket")
            or not policy.resource().made_by("HarborStorage", r"[\w-]+-registry-access")
        ):
            problems.append(
                f"role policy {policy.name!r} grants S3 but is not the program's registry policy made from the program's "
                "bucket: S3 access is the registry's, on its own bucket only"
            )
            continue
        name = bucket.props.get("bucket")
        named = {
            match.group(1)
            for s in found
            for arn in _listed(s.get("Resource"))
            if (match := BUCKET_ARN_RE.fullmatch(str(arn).removesuffix("/*")))
        }
        if found and not is_unknown(name) and named != {name}:
            problems.append(f"role policy {policy.name!r} names buckets {sorted(named)}, not the program's bucket {name!r}")
    return problems


def dns01_names_the_programs_hostname(resources: list[StackResource]) -> list[Violation]:
    """The DNS-01 permission names _acme-challenge.<the cache's own name> in the zone of the cache's record."""
    records = [
        r
        for r in resources
        if r.type == "aws:route53/record:Record"
        and r.resource().made_by("HarborDns", r"[\w-]+")
        and not is_unknown(r.props.get("name"))
    ]
    hosts = {(str(r.props.get("name")).lower().rstrip("."), r.props.get("zoneId")) for r in records}
    problems = []
    for policy in resources:
        if policy.type != "aws:iam/rolePolicy:RolePolicy":
            continue
        try:
            found = statements(policy.props.get("policy"), "policy")
        except Undecidable:
            continue  # the resource check refuses it, or judges it at up
        for statement in found:
            actions = statement.get("Action") if isinstance(statement.get("Action"), list) else [statement.get("Action")]
            if DNS01_CHANGE not in actions:
                continue
            names = ((statement.get("Condition") or {}).get("ForAllValues:StringEquals") or {}).get(DNS01_NAMES_KEY)
            names = names if isinstance(names, list) else [names]
            zones = statement.get("Resource") if isinstance(statement.get("Resource"), list) else [statement.get("Resource")]
            wanted = {(f"{ACME_PREFIX}{host}", f"arn:aws:route53:::hostedzone/{zone}") for host, zone in hosts}
            if not hosts or any((str(n).lower().rstrip("."), str(z)) not in wanted for n in names for z in zones):
                problems.append(
                    f"role policy {policy.name!r} lets the instance change {names} in {zones}: only _acme-challenge of the "
                    f"cache's own name in its zone ({sorted(wanted) or 'no record of the cache found'})"
                )
    return problems


STACK_CHECKS: dict[str, tuple[str, StackCheck]] = {
    "instances-run-as-the-programs-role": (
        "Instances use the program's instance profile, whose role only EC2 assumes.",
        instances_run_as_the_programs_role,
    ),
    "role-grants-land-on-the-right-role": (
        "The DLM service policy and lifecycle policy use the DLM-only role; the instance role's policies the EC2-only role.",
        role_grants_land_on_the_right_role,
    ),
    "registry-grant-names-the-programs-bucket": (
        "The registry's S3 grant names the bucket the program creates.",
        registry_grant_names_the_programs_bucket,
    ),
    "dns01-names-the-programs-hostname": (
        "The DNS-01 permission names _acme-challenge of the cache's own name, in its zone.",
        dns01_names_the_programs_hostname,
    ),
}


# ---------------------------------------------------------------------------------------------
# The pack


def _slug(resource_type: str) -> str:
    return re.sub(
        r"[^a-z0-9]+",
        "-",
        resource_type.split(":")[-1].lower() if resource_type.startswith(f"{PROJECT}:") else resource_type.lower(),
    ).strip("-")


def _resource_policy(name: str, description: str, judge: Callable[[Resource], list[Violation]]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation) -> None:
        resource = Resource(args.resource_type, args.name, args.urn, plain(args.props), bool(args.opts.protect))
        for message in judge(resource):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _type_policy(resource_type: str, check: Callable[[Review], None]) -> ResourceValidationPolicy:
    def judge(resource: Resource) -> list[Violation]:
        return review_resource(resource) if resource.type == resource_type else []

    description = (check.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return _resource_policy(_slug(resource_type), f"{resource_type}: {description}", judge)


def _stack_policy(name: str, description: str, check: StackCheck) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation) -> None:
        resources = [
            StackResource(
                r.resource_type,
                r.name,
                r.urn,
                plain(r.props),
                {key: [dep.urn for dep in deps] for key, deps in (r.property_dependencies or {}).items()},
            )
            for r in args.resources
        ]
        for message in check(resources):
            report_violation(message, None)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


POLICIES = [
    _resource_policy(
        "only-the-programs-resource-types",
        "Every resource is of a type the program creates (the reviewed table ALLOWED); any other type is refused.",
        only_the_programs_types,
    ),
    *(_type_policy(kind, check) for kind, check in ALLOWED.items() if check is not nothing_to_check),
    *(_stack_policy(name, description, check) for name, (description, check) in STACK_CHECKS.items()),
]
