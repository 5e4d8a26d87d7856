"""harbor-cache's promises as mandatory policies, each a function of one resource's inputs.

Every message says what to change. The functions take plain values so they are unit-tested
without the Pulumi CLI (tests/policy/test_policies.py); `POLICIES` wraps them for the pack.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PUBLIC_ACCESS_TAG = "harbor-cache:allow-public-access"
NODE_SCRATCH_TAG = "harbor-cache:node-scratch"
LISTENER_TYPES = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
# TLS 1.2 or 1.3 minimum, TLS 1.3 offered: ELB's TLS13-1-2-* and TLS13-1-3-* policies (ELB User Guide,
# "Security policies for your Application Load Balancer"). Unset, an HTTPS listener gets
# ELBSecurityPolicy-2016-08, which still speaks TLS 1.0.
TLS_POLICY_RE = re.compile(r"^ELBSecurityPolicy-TLS13-1-[23]-")
# Harbor nodes behind the load balancer serve plain HTTP here (harbor.yml http.port).
NODE_HTTP_PORT = 8080
WORLD = ("0.0.0.0/0", "::/0")
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE_TYPES = ("aws:ec2/securityGroupRule:SecurityGroupRule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
# Command lines, environment, triggers (and a local command's interpreter and dir) of both kinds.
COMMAND_FIELDS = {
    "command:remote:Command": ("create", "update", "delete", "environment", "triggers"),
    "command:local:Command": ("create", "update", "delete", "environment", "triggers", "interpreter", "dir"),
}
# What a credential looks like on a command line, in an environment or in triggers.
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
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b(ghp|gho|ghs|github_pat|dckr_pat|glpat)_[A-Za-z0-9_-]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
)
# The one permission the instance role holds: Traefik's DNS-01 challenge through lego's route53
# provider. Spelled exactly: IAM matches actions case-insensitively and with wildcards, so
# `route53:changeresourcerecordsets` or `route53:Change*` would grant it (or more) unnoticed.
DNS01_CHANGE = "route53:ChangeResourceRecordSets"
# Traefik is given the zone id (AWS_HOSTED_ZONE_ID), so ListHostedZonesByName is not part of the design.
DNS01_ACTIONS = (DNS01_CHANGE, "route53:ListResourceRecordSets", "route53:GetChange")
# The VM's metrics reporter (components/aws/alarms.py) may put metrics into its own namespace only.
METRICS_ACTION = "cloudwatch:PutMetricData"
METRICS_NAMESPACE = "HarborCache"
# The reporter's HoursSinceSnapshot (issue 19): read-only, and an action without resource-level permissions.
SNAPSHOT_READ_ACTION = "ec2:DescribeSnapshots"
# The only managed policy the program attaches: AWS's service policy for the DLM snapshot role.
DLM_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
ROLE_POLICY_TYPES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")
# Traefik runs on the host network; containers one hop away must not reach IMDS. In every mode: the
# s3 registry gets its credentials from the host's relay (components/vm/imds_relay.py), no exception.
MAX_IMDS_HOP_LIMIT = 1

Violation = str
Check = Callable[[str, Mapping[str, Any], bool], list[Violation]]
StackCheck = Callable[[list[tuple[str, Mapping[str, Any]]]], list[Violation]]


def _covers_everything(blocks: Iterable[str]) -> bool:
    """Whether the union of the blocks is all of IPv4 or all of IPv6: 0.0.0.0/1 + 128.0.0.0/1 is the world too."""
    networks = [ipaddress.ip_network(block, strict=False) for block in blocks]
    for version, world in ((4, ipaddress.ip_network("0.0.0.0/0")), (6, ipaddress.ip_network("::/0"))):
        if list(ipaddress.collapse_addresses(n for n in networks if n.version == version)) == [world]:
            return True
    return False


def _rules_open_to_world(rules: Iterable[Mapping[str, Any]], port: int) -> bool:
    """Whether the rules that admit `port`, taken together, admit every address."""
    blocks = []
    for rule in rules or []:
        low, high = rule.get("fromPort", 0), rule.get("toPort", 65535)
        all_traffic = str(rule.get("protocol")) in ("-1", "all")
        if all_traffic or low <= port <= high:
            blocks += [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
    return _covers_everything(blocks)


def _single_rule(props: Mapping[str, Any]) -> dict[str, Any]:
    """A stand-alone ingress rule resource in the inline-rule shape."""
    cidrs = props.get("cidrBlocks") or ([props["cidrIpv4"]] if props.get("cidrIpv4") else [])
    ipv6 = props.get("ipv6CidrBlocks") or ([props["cidrIpv6"]] if props.get("cidrIpv6") else [])
    return {
        "fromPort": props.get("fromPort", 0),
        "toPort": props.get("toPort", 65535),
        "protocol": props.get("protocol", props.get("ipProtocol")),
        "cidrBlocks": cidrs,
        "ipv6CidrBlocks": ipv6,
    }


def _ingress(resource_type: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    if resource_type == SECURITY_GROUP:
        return list(props.get("ingress") or [])
    if resource_type in INGRESS_RULE_TYPES and props.get("type", "ingress") == "ingress":
        return [_single_rule(props)]
    return []


def imdsv2_required(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    if resource_type != "aws:ec2/instance:Instance":
        return []
    options = props.get("metadataOptions") or {}
    problems = []
    if options.get("httpTokens") != "required":
        problems.append("IMDSv1 is allowed: set metadata_options.http_tokens='required'")
    # Unset, the hop limit is the AMI's or the account's default (2 for many current AMIs). Over the
    # analyzer's gRPC the number arrives as a protobuf Struct double (1.0), not an int.
    hop_limit = options.get("httpPutResponseHopLimit")
    if isinstance(hop_limit, bool) or not isinstance(hop_limit, int | float) or hop_limit > MAX_IMDS_HOP_LIMIT:
        reason = "above 1, every container on a bridge network reaches the instance role and the user data"
        problems.append(
            f"IMDS hop limit is {hop_limit}: set metadata_options.http_put_response_hop_limit={MAX_IMDS_HOP_LIMIT} ({reason})"
        )
    return problems


def volumes_encrypted(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    if resource_type == "aws:ebs/volume:Volume" and props.get("encrypted") is not True:
        return ["EBS volume is not encrypted: set encrypted=True"]
    if resource_type == "aws:ec2/instance:Instance":
        problems = []
        if (props.get("rootBlockDevice") or {}).get("encrypted") is not True:
            problems.append("root volume is not encrypted: set root_block_device.encrypted=True")
        for device in props.get("ebsBlockDevices") or []:
            if device.get("encrypted") is not True:
                problems.append(f"EBS block device {device.get('deviceName')} is not encrypted: set encrypted=True")
        return problems
    return []


def no_world_ssh(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    if _rules_open_to_world(_ingress(resource_type, props), 22):
        return ["port 22 is open to 0.0.0.0/0 or ::/0: list your addresses in sshAllowedCidrs"]
    return []


def web_not_public_unless_allowed(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    rules = _ingress(resource_type, props)
    open_ports = [port for port in (443, 80) if _rules_open_to_world(rules, port)]
    if not open_ports:
        return []
    if (props.get("tags") or {}).get(PUBLIC_ACCESS_TAG) == "true":
        return []
    ports = " and ".join(map(str, open_ports))
    return [
        f"port {ports} is open to the world, which makes the proxy projects an open pull-through cache: "
        "restrict allowedCidrs, or set allowPublicAccess: true if that is intended"
    ]


def data_volume_protected(resource_type: str, props: Mapping[str, Any], protect: bool) -> list[Violation]:
    if resource_type != "aws:ebs/volume:Volume" or protect:
        return []
    # Harbor nodes 1..N-1 (replicas > 1) keep nothing precious on /data and go with scale-down: their
    # volume says so in a tag. A volume restored from a snapshot holds data, whatever its tag says.
    if (props.get("tags") or {}).get(NODE_SCRATCH_TAG) == "true" and not props.get("snapshotId"):
        return []
    return ["the data volume can be replaced or deleted by an update: create it with protect=True (and retain_on_delete=True)"]


def listeners_https_only(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    """A load balancer serves Harbor over HTTPS with a current TLS policy; plain HTTP only redirects to it."""
    if resource_type not in LISTENER_TYPES:
        return []
    protocol = str(props.get("protocol") or "").upper()
    actions = list(props.get("defaultActions") or [])
    if protocol == "HTTP":
        redirects = all(
            action.get("type") == "redirect" and str((action.get("redirect") or {}).get("protocol", "")).upper() == "HTTPS"
            for action in actions
        )
        if not actions or not redirects:
            return ["an HTTP listener serves Harbor in plain text: its only action must redirect to HTTPS"]
        return []
    if protocol == "HTTPS":
        policy = props.get("sslPolicy")
        if not isinstance(policy, str) or not TLS_POLICY_RE.match(policy):
            return [
                f"the HTTPS listener's ssl_policy is {policy!r}: use a TLS 1.2+ policy with TLS 1.3 "
                "(ELBSecurityPolicy-TLS13-1-2-2021-06 or another ELBSecurityPolicy-TLS13-1-2-*/1-3-*)"
            ]
        return []
    return [f"a load balancer listener with protocol {protocol or 'unset'!r}: harbor-cache serves only HTTPS (and 80 redirects)"]


def nodes_only_behind_the_load_balancer(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    """A group that admits Harbor's port from another group (the nodes' group, replicas > 1) admits no
    address block on Harbor's port or on 443/80: every request goes through the load balancer."""
    rules = _ingress(resource_type, props)
    behind = [
        rule
        for rule in rules
        if rule.get("securityGroups") and rule.get("fromPort", 0) <= NODE_HTTP_PORT <= rule.get("toPort", 65535)
    ]
    if resource_type != SECURITY_GROUP or not behind:
        return []
    exposed = sorted(
        {
            port
            for port in (NODE_HTTP_PORT, 443, 80)
            for rule in rules
            if (rule.get("cidrBlocks") or rule.get("ipv6CidrBlocks"))
            and (str(rule.get("protocol")) in ("-1", "all") or rule.get("fromPort", 0) <= port <= rule.get("toPort", 65535))
        }
    )
    if exposed:
        return [
            f"the Harbor nodes' security group admits address blocks on {', '.join(map(str, exposed))}: nodes behind the "
            "load balancer take web traffic only from its security group"
        ]
    return []


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    statements = (document or {}).get("Statement", []) if isinstance(document, dict) else []
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _action_matches(pattern: str, action: str) -> bool:
    """IAM's matching: case-insensitive, `*` and `?` wildcards and nothing else (no fnmatch `[...]` classes;
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html)."""
    wildcards = {"*": ".*", "?": "."}
    regex = "".join(wildcards.get(char, re.escape(char)) for char in str(pattern))
    return re.fullmatch(regex, action, re.IGNORECASE | re.DOTALL) is not None


def route53_scoped(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    if resource_type not in ROLE_POLICY_TYPES:
        return []
    problems = []
    for statement in _statements(props.get("policy")):
        actions = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or not any(_action_matches(a, DNS01_CHANGE) for a in actions):
            continue
        resources = _as_list(statement.get("Resource", []))
        if len(resources) != 1 or not str(resources[0]).startswith("arn:aws:route53:::hostedzone/") or "*" in str(resources[0]):
            problems.append(
                "route53:ChangeResourceRecordSets must name exactly one hosted zone ARN, not "
                f"{resources}: scope it to the stack's zone"
            )
        names = (
            (statement.get("Condition") or {})
            .get("ForAllValues:StringEquals", {})
            .get("route53:ChangeResourceRecordSetsNormalizedRecordNames")
        )
        if not names or not all(str(name).startswith("_acme-challenge.") for name in _as_list(names)):
            problems.append(
                "route53:ChangeResourceRecordSets must be limited to _acme-challenge.<hostname> with a "
                "ForAllValues:StringEquals condition on route53:ChangeResourceRecordSetsNormalizedRecordNames"
            )
    return problems


# storage: s3 (issue 13): the registry's actions from distribution's s3 driver docs
# (docs/content/storage-drivers/s3.md, "S3 permission scopes"), only on one named bucket.
REGISTRY_S3_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
REGISTRY_S3_OBJECT_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
)
BUCKET_ARN_RE = re.compile(r"^arn:aws[\w-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _registry_bucket_statement(statement: Mapping[str, Any]) -> bool:
    """True for the registry's S3 grant: its exact actions on one named bucket (or that bucket's objects)."""
    actions, resources = _as_list(statement.get("Action", [])), _as_list(statement.get("Resource", []))
    if not actions or not resources or "Condition" in statement:
        return False
    if all(a in REGISTRY_S3_BUCKET_ACTIONS for a in actions):
        return all(isinstance(r, str) and BUCKET_ARN_RE.match(r) for r in resources)
    if all(a in REGISTRY_S3_OBJECT_ACTIONS for a in actions):
        return all(isinstance(r, str) and r.endswith("/*") and BUCKET_ARN_RE.match(r[:-2]) for r in resources)
    return False


def _statement_problems(statement: Mapping[str, Any]) -> list[Violation]:
    if statement.get("Effect") != "Allow" or _registry_bucket_statement(statement):
        return []
    if "NotAction" in statement or "NotResource" in statement:
        return [
            "an Allow statement with NotAction/NotResource grants everything it does not name: "
            f"list the actions ({', '.join(DNS01_ACTIONS)}) and resources instead"
        ]
    problems = []
    for action in _as_list(statement.get("Action", [])):
        if action in DNS01_ACTIONS or action == SNAPSHOT_READ_ACTION:
            continue
        if action == METRICS_ACTION:
            namespace = ((statement.get("Condition") or {}).get("StringEquals") or {}).get("cloudwatch:namespace")
            if namespace != METRICS_NAMESPACE:
                problems.append(
                    f"{METRICS_ACTION} must be limited to the namespace {METRICS_NAMESPACE!r} with a StringEquals "
                    "condition on cloudwatch:namespace"
                )
            continue
        covered = [name for name in DNS01_ACTIONS if _action_matches(action, name)]
        if covered and not any(c in str(action) for c in "*?"):
            problems.append(f"IAM action {action!r} is {covered[0]} in another spelling: write it exactly so reviews see it")
        else:
            problems.append(
                f"IAM action {action!r} widens the instance role beyond DNS-01 and metrics: only "
                f"{', '.join((*DNS01_ACTIONS, METRICS_ACTION, SNAPSHOT_READ_ACTION))} are allowed, spelled out (no wildcards)"
            )
    return problems


def iam_grants_only_the_design(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    """The instance role holds the DNS-01 permission and nothing else; the DLM role AWS's DLM policy.

    A resource-level check cannot tell which role a policy lands on, so every role policy must be a
    DNS-01 policy and every managed attachment the DLM one (stack policy `dlm-policy-on-the-dlm-role`
    checks where that one lands).
    """
    if resource_type in ROLE_POLICY_TYPES:
        return [problem for statement in _statements(props.get("policy")) for problem in _statement_problems(statement)]
    if resource_type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        arns = [props.get("policyArn")]
    elif resource_type == "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive":
        arns = list(props.get("policyArns") or [])
    elif resource_type == "aws:iam/policyAttachment:PolicyAttachment":
        return ["aws.iam.PolicyAttachment attaches a managed policy exclusively across roles, users and groups: not used here"]
    elif resource_type == "aws:iam/role:Role":
        problems = []
        if props.get("managedPolicyArns"):
            problems.append(f"the role carries managed_policy_arns {list(props['managedPolicyArns'])}: remove them")
        if any((policy or {}).get("policy") for policy in props.get("inlinePolicies") or []):
            problems.append("the role carries inline_policies: remove them (the DNS-01 permission is its own RolePolicy)")
        return problems
    else:
        return []
    return [
        f"managed policy {arn} is attached to a role: only {DLM_SERVICE_POLICY} (the snapshot role) is"
        for arn in arns
        if arn != DLM_SERVICE_POLICY
    ]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from (f"{key}={text}" for text in _strings(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def no_credentials_in_commands(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    """Command lines, environment and triggers show up in `ps`, logs and previews, secret or not.

    Pulumi's Python policy SDK hands policies unwrapped values, so a policy cannot see whether a
    value is marked secret; the rule is therefore the stronger one: nothing that looks like a
    credential in those fields at all. Secrets go on stdin (marked secret by the program).
    """
    kind = "local" if resource_type == "command:local:Command" else "remote"
    problems = []
    for field in COMMAND_FIELDS.get(resource_type, ()):
        for text in _strings(props.get(field)):
            if any(pattern.search(text) for pattern in CREDENTIAL_PATTERNS):
                problems.append(
                    f"the {kind} command's {field} carries what looks like a password or token: "
                    "pass it on stdin as a Pulumi secret instead"
                )
                break
    return problems


def _trusts_only(role: Mapping[str, Any], service: str) -> bool:
    statements = _statements(role.get("assumeRolePolicy"))
    principals = [_as_list((s.get("Principal") or {}).get("Service", [])) for s in statements if s.get("Effect") == "Allow"]
    return bool(principals) and all(p == [service] for p in principals)


def dlm_policy_on_the_dlm_role(resources: list[tuple[str, Mapping[str, Any]]]) -> list[Violation]:
    """AWS's DLM service policy (snapshot create/delete on every volume) only on a role that only DLM assumes."""
    roles = {props.get("name"): props for kind, props in resources if kind == "aws:iam/role:Role"}
    return [
        f"the DLM service policy is attached to role {props.get('role')!r}, which not only dlm.amazonaws.com assumes"
        for kind, props in resources
        if kind == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
        and props.get("policyArn") == DLM_SERVICE_POLICY
        and not _trusts_only(roles.get(props.get("role")) or {}, "dlm.amazonaws.com")
    ]


def no_world_ssh_across_rule_resources(resources: list[tuple[str, Mapping[str, Any]]]) -> list[Violation]:
    """Stand-alone ingress rules of one security group, taken together (each alone passes `no-world-ssh`)."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for kind, props in resources:
        if kind in INGRESS_RULE_TYPES and props.get("type", "ingress") == "ingress" and props.get("securityGroupId"):
            by_group.setdefault(str(props["securityGroupId"]), []).append(_single_rule(props))
    return [
        f"the ingress rules of security group {group} together open 22 to every address: list your addresses in sshAllowedCidrs"
        for group, rules in by_group.items()
        if len(rules) > 1 and _rules_open_to_world(rules, 22)
    ]


CHECKS: dict[str, tuple[str, Check]] = {
    "imdsv2-required": (
        "EC2 instances require IMDSv2 tokens with hop limit 1.",
        imdsv2_required,
    ),
    "ebs-encrypted": ("Every EBS volume and root device is encrypted.", volumes_encrypted),
    "no-world-ssh": ("No security-group rules open 22 to all addresses (by the union of their blocks).", no_world_ssh),
    "web-not-public": ("443/80 are not open to the world unless allowPublicAccess says so.", web_not_public_unless_allowed),
    "data-volume-protected": (
        "The data volume is protected (and retained on delete); only a node's tagged scratch volume is not.",
        data_volume_protected,
    ),
    "listeners-https-only": (
        "Load balancer listeners serve HTTPS with a TLS 1.2+/1.3 policy; HTTP only redirects.",
        listeners_https_only,
    ),
    "nodes-only-behind-the-load-balancer": (
        "Harbor nodes behind the load balancer admit web traffic only from its security group.",
        nodes_only_behind_the_load_balancer,
    ),
    "route53-dns01-scoped": ("The DNS-01 permission names one zone and the _acme-challenge record.", route53_scoped),
    "iam-grants-only-the-design": (
        "Role policies grant only the DNS-01 actions, spelled out; the only managed policy is DLM's.",
        iam_grants_only_the_design,
    ),
    "no-credentials-in-commands": (
        "Remote and local commands carry no credential outside stdin.",
        no_credentials_in_commands,
    ),
}
STACK_CHECKS: dict[str, tuple[str, StackCheck]] = {
    "no-world-ssh-across-rules": (
        "Stand-alone ingress rules of one security group do not together open 22 to all addresses.",
        no_world_ssh_across_rule_resources,
    ),
    "dlm-policy-on-the-dlm-role": (
        "AWS's DLM service policy is attached only to a role only DLM assumes.",
        dlm_policy_on_the_dlm_role,
    ),
}


def _policy(name: str, description: str, check: Check) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation) -> None:
        for message in check(args.resource_type, args.props, bool(args.opts.protect)):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _stack_policy(name: str, description: str, check: StackCheck) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation) -> None:
        for message in check([(resource.resource_type, resource.props) for resource in args.resources]):
            report_violation(message, None)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


POLICIES = [
    *(_policy(name, description, check) for name, (description, check) in CHECKS.items()),
    *(_stack_policy(name, description, check) for name, (description, check) in STACK_CHECKS.items()),
]
