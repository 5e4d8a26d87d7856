"""harbor-cache's promises as mandatory policies, each a function of one resource's inputs.

Every message says what to change. The functions take plain values so they are unit-tested
without the Pulumi CLI (tests/test_policies.py); `POLICIES` wraps them for the pack.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy

PUBLIC_ACCESS_TAG = "harbor-cache:allow-public-access"
WORLD = ("0.0.0.0/0", "::/0")
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE_TYPES = ("aws:ec2/securityGroupRule:SecurityGroupRule", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
REMOTE_COMMAND = "command:remote:Command"
# What a credential looks like on a command line, in an environment or in triggers.
CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)\b[\w-]*(password|passwd|secret|token|api[_-]?key)[\w-]*\s*[=:]\s*\S+"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b(ghp|gho|ghs|github_pat|dckr_pat|glpat)_[A-Za-z0-9_-]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
)

Violation = str
Check = Callable[[str, Mapping[str, Any], bool], list[Violation]]


def _rules_open_to_world(rules: Iterable[Mapping[str, Any]], port: int) -> bool:
    for rule in rules or []:
        low, high = rule.get("fromPort", 0), rule.get("toPort", 65535)
        all_traffic = str(rule.get("protocol")) in ("-1", "all")
        if not (all_traffic or low <= port <= high):
            continue
        blocks = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
        if any(ipaddress.ip_network(block, strict=False).prefixlen == 0 for block in blocks):
            return True
    return False


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
    if options.get("httpTokens") != "required":
        return ["IMDSv1 is allowed: set metadata_options.http_tokens='required' (hop limit 2 for Traefik in a container)"]
    return []


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


def data_volume_protected(resource_type: str, _props: Mapping[str, Any], protect: bool) -> list[Violation]:
    if resource_type == "aws:ebs/volume:Volume" and not protect:
        return [
            "the data volume can be replaced or deleted by an update: create it with protect=True (and retain_on_delete=True)"
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


def route53_scoped(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    if resource_type not in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        return []
    problems = []
    for statement in _statements(props.get("policy")):
        actions = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or not any(
            a in ("route53:ChangeResourceRecordSets", "route53:*", "*") for a in actions
        ):
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


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from (f"{key}={text}" for text in _strings(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def no_credentials_in_remote_commands(resource_type: str, props: Mapping[str, Any], _protect: bool) -> list[Violation]:
    """Command lines, environment and triggers show up in `ps`, logs and previews, secret or not.

    Pulumi's Python policy SDK hands policies unwrapped values, so a policy cannot see whether a
    value is marked secret; the rule is therefore the stronger one: nothing that looks like a
    credential in those fields at all. Secrets go on stdin (marked secret by the program).
    """
    if resource_type != REMOTE_COMMAND:
        return []
    problems = []
    for field in ("create", "update", "delete", "environment", "triggers"):
        for text in _strings(props.get(field)):
            if any(pattern.search(text) for pattern in CREDENTIAL_PATTERNS):
                problems.append(
                    f"the remote command's {field} carries what looks like a password or token: "
                    "pass it on stdin as a Pulumi secret instead"
                )
                break
    return problems


CHECKS: dict[str, tuple[str, Check]] = {
    "imdsv2-required": ("EC2 instances require IMDSv2 tokens.", imdsv2_required),
    "ebs-encrypted": ("Every EBS volume and root device is encrypted.", volumes_encrypted),
    "no-world-ssh": ("No security-group rule opens 22 to 0.0.0.0/0 or ::/0.", no_world_ssh),
    "web-not-public": ("443/80 are not open to the world unless allowPublicAccess says so.", web_not_public_unless_allowed),
    "data-volume-protected": ("The data volume is protected (and retained on delete).", data_volume_protected),
    "route53-dns01-scoped": ("The DNS-01 permission names one zone and the _acme-challenge record.", route53_scoped),
    "no-credentials-in-remote-commands": (
        "Remote commands carry no credential outside stdin.",
        no_credentials_in_remote_commands,
    ),
}


def _policy(name: str, description: str, check: Check) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation) -> None:
        for message in check(args.resource_type, args.props, bool(args.opts.protect)):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


POLICIES = [_policy(name, description, check) for name, (description, check) in CHECKS.items()]
