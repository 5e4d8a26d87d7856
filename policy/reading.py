"""How the pack reads what the engine sends, and how a check fails closed.

The analyzer hands policies the resource's properties wrapped in pulumi_policy's proxies, which turn
an unknown value into an advisory note; `plain` takes them off so a check decides what an unknown
means. A value a check needs and cannot read (unknown at preview, or not parseable) raises
`Undecidable`; `Review` turns that into a violation naming the field, except for the fields
`KNOWN_ONLY_AT_UP` of the program's own resources at preview.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import proxy as policy_proxy

PROJECT = "harbor-cache"
WORLD_V4, WORLD_V6 = ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")
# IAM policy grammar (IAM User Guide, "IAM JSON policy element reference"): what a document may hold.
DOCUMENT_KEYS = {"Version", "Id", "Statement"}
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}

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


def dns_name(value: Any) -> str:
    """A DNS name as Route 53 and ACM compare it: case-insensitive, with or without the root's dot (the AWS provider
    stores a record's `name` lower-cased without it, terraform-provider-aws internal/service/route53/record.go `name`
    StateFunc, where ACM's resourceRecordName ends in one)."""
    return str(value).strip().lower().rstrip(".")


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


# The program's components and the names it gives them (__main__.py: HarborCache("harbor"), which names its
# children <its name>-<part>; HarborInstall once per node). A URN holds only the parent's type, not its
# name, so the exemptions pin the resource's full name: an engine refuses two resources with one URN, so
# a component of the program's type made elsewhere cannot give its children the program's names.
PROGRAM_COMPONENTS: dict[str, str] = {
    "HarborCache": "harbor",
    "HarborVm": "harbor-vm",
    "HarborInstall": r"harbor-install(?:-[1-9][0-9]*)?",
    "HarborConfig": "harbor-config",
    "HarborDns": "harbor-dns",
    "HarborCaa": "harbor-caa",
    "HarborProbe": r"harbor-probe(?:-[1-9][0-9]*)?",  # one per node
    "HarborAlarms": "harbor-alarms",
    "HarborStorage": "harbor-storage",
    "HarborDataServices": "harbor-data",
    "HarborSharedSecrets": "harbor-shared",
    "HarborLoadBalancer": "harbor-lb",
    # Per node, named after the node's install (components/harbor_cache.py install_name + "-upgrade-hold").
    "HarborUpgradeHold": r"harbor-install(?:-[1-9][0-9]*)?-upgrade-hold",
    "HarborBackupWatch": "harbor-backup-watch",
    "HarborDashboard": "harbor-dashboard",
}


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    # The properties of the provider the engine names in the request (AnalyzeRequest.provider), when it does.
    provider_props: Mapping[str, Any] | None = None

    def made_by(self, owner: str, part_re: str) -> bool:
        """Whether this is the program's resource: under HarborCache and the component `owner`, named
        `<the program's name for owner>-<part_re>` (harbor-vm-sg: made_by("HarborVm", "sg")), or, for `part_re` "",
        named as the component itself (HarborDashboard's dashboard `harbor-dashboard`: made_by("HarborDashboard", ""))."""
        urn = Urn.parse(self.urn)
        name_re = f"(?:{PROGRAM_COMPONENTS[owner]})" + (f"-(?:{part_re})" if part_re else "")
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
    ("command:remote:Command", "HarborUpgradeHold", r"[\w.-]+"): frozenset({"connection", "create", "triggers"}),
    ("aws:iam/rolePolicy:RolePolicy", "HarborStorage", "registry-access"): frozenset({"policy"}),
    # The reporter's permissions name the alarm topic made in the same update (ListSubscriptionsByTopic on it).
    ("aws:iam/rolePolicy:RolePolicy", "HarborAlarms", "put-metrics"): frozenset({"policy"}),
    ("aws:s3/bucketPolicy:BucketPolicy", "HarborStorage", "tls-only"): frozenset({"policy"}),
    ("aws:route53/record:Record", "HarborLoadBalancer", "certificate-validation"): frozenset({"name", "type", "records"}),
    ("aws:route53/record:Record", "HarborDns", "a"): frozenset({"aliases"}),
    # The key pair's public key is the stack's SSH key made in the same update.
    ("aws:ec2/keyPair:KeyPair", "HarborVm", "key-pair"): frozenset({"publicKey"}),
    # The CAA value names the ACME account that Traefik registers in the same update (components/aws/caa.py).
    ("aws:route53/record:Record", "HarborCaa", "caa"): frozenset({"records"}),
    # The backup watch's topic policy and targets name the topic and rules made in the same update.
    ("aws:sns/topicPolicy:TopicPolicy", "HarborBackupWatch", "topic-policy"): frozenset({"policy"}),
    ("aws:cloudwatch/eventTarget:EventTarget", "HarborBackupWatch", r"[\w-]+"): frozenset({"arn"}),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "HarborAlarms", r"[\w-]+"): frozenset(
        {"alarmActions", "okActions", "insufficientDataActions"}
    ),
    # The dashboard's body names the alarms, the load balancer and the certificate made in the same update
    # (components/aws/dashboard.py); its origin at preview: stack check the-dashboard-shows-the-programs-own.
    ("aws:cloudwatch/dashboard:Dashboard", "HarborDashboard", ""): frozenset({"dashboardBody"}),
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


def as_list(value: Any, path: str) -> list:
    value = known(value, path)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def number(value: Any, path: str, default: float | None = None) -> float:
    value = known(value, path)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Undecidable(path, f"is {value!r}, not a number")
    return value


def network(block: Any, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    block = known(block, path)
    try:
        return ipaddress.ip_network(str(block), strict=False)
    except ValueError:
        raise Undecidable(path, f"is {block!r}, not a CIDR block") from None


def covers_everything(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the union of the blocks is all of IPv4 or all of IPv6: 0.0.0.0/1 + 128.0.0.0/1 is the world too."""
    networks = list(networks)
    return any(
        list(ipaddress.collapse_addresses(n for n in networks if n.version == world.version)) == [world]
        for world in (WORLD_V4, WORLD_V6)
    )


# Beyond this many public addresses a port counts as open to the world (review 2 of issue 22: "all of
# IPv4 but one address" is the world in all but name): 2^16 IPv4 addresses (a /16), 2^80 IPv6 (a /48).
MAX_PUBLIC_ADDRESSES = {4: 2**16, 6: 2**80}


def too_wide(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Every address, or more public (non-private) addresses than MAX_PUBLIC_ADDRESSES, by the union of the blocks."""
    networks = list(networks)
    if covers_everything(networks):
        return True
    for version, limit in MAX_PUBLIC_ADDRESSES.items():
        union = ipaddress.collapse_addresses(n for n in networks if n.version == version)
        if sum(n.num_addresses for n in union if not n.is_private) > limit:
            return True
    return False


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


def action_matches(pattern: str, action: str) -> bool:
    """IAM's matching: case-insensitive, `*` and `?` wildcards and nothing else (no fnmatch `[...]` classes;
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html)."""
    wildcards = {"*": ".*", "?": "."}
    regex = "".join(wildcards.get(char, re.escape(char)) for char in str(pattern))
    return re.fullmatch(regex, action, re.IGNORECASE | re.DOTALL) is not None
