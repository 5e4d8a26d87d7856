"""Stack checks: where values come from. The engine's AnalyzeStack hands every resource with its
property dependencies (the URNs each input came from), which are known at preview even when the
values are not, and with its outputs (pkg/resource/deploy/step_generator.go AnalyzeResources), which for
the bridged providers (aws, random, tls) carry the resource's id as the property "id"
(pulumi-terraform-bridge pkg/tfbridge/provider.go Create: MakeTerraformResult of the Terraform state,
whose schema always has "id"). So a reference is judged twice: it comes from the program's resource
(its dependency) and it holds that resource's value (`holds_the_sources_value`), never a literal kept
beside the dependency."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fields import GROUPS, IDENTITIES, NOTIFICATIONS, VALIDATION, Source, references_judged_by
from reading import Resource, Review, Undecidable, Violation, dns_name, is_unknown, statements
from resource_checks import (
    ACME_PREFIX,
    CAA_ACCOUNT_RE,
    CAA_NO_WILDCARDS,
    COMMAND_OWNERS,
    DLM_SERVICE,
    DNS01_CHANGE,
    DNS01_LIST,
    DNS01_NAMES_KEY,
    EC2_SERVICE,
    NODE_CHECK_PORT,
    _stack_config,
    caa_shape,
    credentialed_public_allowed,
    iam_role,
)

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


def holds_the_sources_value(value: Any, source: StackResource, output: str) -> bool:
    """Whether a reference holds `output` of the resource it comes from (an id, a name, an ARN), not a literal kept
    beside the dependency (`sg.id.apply(lambda _: "sg-...")` depends on the group and names another).

    At `up` every value is known and the two must be equal. At a preview, a value made from a resource created or
    replaced in the same update is unknown: an unknown reference cannot be a literal and is judged by its dependency
    alone; a known one must equal a known value of its source (a literal where the program's value would still be
    unknown is refused). An output the source does not have counts as unknown."""
    if is_unknown(value):
        return True
    origin = source.props.get(output)
    return origin is not None and not is_unknown(origin) and str(value).strip() == str(origin).strip()


def _held_source(resource: StackResource, key: str, output: str, by_urn: dict[str, StackResource]) -> StackResource | None:
    """The one resource a property comes from, if the property holds that resource's `output`."""
    source = _source(resource, key, by_urn)
    return source if source is not None and holds_the_sources_value(resource.props.get(key), source, output) else None


INSTANCE_PROFILE = "aws:iam/instanceProfile:InstanceProfile"


def instances_run_as_the_programs_role(resources: list[StackResource]) -> list[Violation]:
    """An instance's profile is the program's InstanceProfile, whose role trusts only EC2 (never a
    pre-existing profile, never a role trusted by anyone else)."""
    by_urn = _by_urn(resources)
    problems = []
    for instance in (r for r in resources if r.type == "aws:ec2/instance:Instance"):
        profile = _held_source(instance, "iamInstanceProfile", "name", by_urn)
        role = _held_source(profile, "role", "name", by_urn) if profile and profile.type == INSTANCE_PROFILE else None
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
    # type -> (the field naming the role, the role's output it holds, the service the role must trust)
    wanted = {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "name", DLM_SERVICE),
        "aws:dlm/lifecyclePolicy:LifecyclePolicy": ("executionRoleArn", "arn", DLM_SERVICE),
        "aws:iam/rolePolicy:RolePolicy": ("role", "name", EC2_SERVICE),
    }
    problems = []
    for resource in resources:
        if resource.type not in wanted:
            continue
        key, output, service = wanted[resource.type]
        if _trusted_service(_held_source(resource, key, output, by_urn)) != service:
            problems.append(
                f"{resource.type} {resource.name!r} sets {key} to {resource.props.get(key)!r}, not the program's role that only "
                f"{service} assumes"
            )
    return problems


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _reporter_policy_from_the_alarm_topic(policy: StackResource, found: list, by_urn: dict[str, StackResource]) -> bool:
    """The reporter's permissions (HarborAlarms' put-metrics) made from the program's alarm topic alone, and
    the SNS resource they name is that topic's ARN (ConfirmedAlarmSubscribers, issue 19)."""
    topic = _source(policy, "policy", by_urn)
    if (
        topic is None
        or topic.type != "aws:sns/topic:Topic"
        or not topic.resource().made_by("HarborAlarms", "topic")
        or not policy.resource().made_by("HarborAlarms", "put-metrics")
    ):
        return False
    named = [
        arn
        for s in found
        if any(str(action).startswith("sns:") for action in _listed(s.get("Action")))
        for arn in _listed(s.get("Resource"))
    ]
    return all(holds_the_sources_value(arn, topic, "arn") for arn in named)


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
        urns = policy.property_dependencies.get("policy") or []
        sources = [by_urn.get(urn) for urn in urns]
        from_a_bucket = any(source is not None and source.type == "aws:s3/bucket:Bucket" for source in sources)
        # An unknown document (a preview) is judged by where it comes from, whatever it will grant: the
        # program's only policy made from other resources is its registry policy, made from its bucket alone.
        unknown = is_unknown(policy.props.get("policy"))
        registry = policy.resource().made_by("HarborStorage", "registry-access")
        if not (grants_s3 or from_a_bucket or unknown or urns or registry):
            continue
        if not grants_s3 and _reporter_policy_from_the_alarm_topic(policy, found, by_urn):
            continue
        bucket = _source(policy, "policy", by_urn)
        if (
            bucket is None
            or len(urns) != 1
            or bucket.type != "aws:s3/bucket:Bucket"
            or not bucket.resource().made_by("HarborStorage", "bucket")
            or not policy.resource().made_by("HarborStorage", "registry-access")
        ):
            problems.append(
                f"role policy {policy.name!r} grants S3, is made from other resources ({sorted(urns)}) or is unknown, but is "
                "not the program's registry policy made from the program's bucket alone: S3 access is the registry's, on "
                "its own bucket only"
            )
            continue
        named = sorted({str(arn).removesuffix("/*") for s in found for arn in _listed(s.get("Resource"))})
        if not all(holds_the_sources_value(arn, bucket, "arn") for arn in named):
            problems.append(
                f"role policy {policy.name!r} names buckets {named}, not the program's bucket {bucket.props.get('arn')!r}"
            )
    return problems


def dns01_names_the_programs_hostname(resources: list[StackResource]) -> list[Violation]:
    """The DNS-01 permission names _acme-challenge.<the cache's own name> in the zone of the cache's record."""
    records = [
        r
        for r in resources
        if r.type == "aws:route53/record:Record"
        and r.resource().made_by("HarborDns", "a")
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
            zones = statement.get("Resource") if isinstance(statement.get("Resource"), list) else [statement.get("Resource")]
            if DNS01_LIST in actions and (
                not hosts or any(f"arn:aws:route53:::hostedzone/{z}" not in zones for _, z in hosts) or len(zones) != 1
            ):
                problems.append(
                    f"role policy {policy.name!r} lets the instance list the records of {zones}: only the zone of the "
                    f"cache's own name ({sorted(z for _, z in hosts) or 'no record of the cache found'})"
                )
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


def _node_of(resource: StackResource, suffix: str) -> str | None:
    """`harbor-vm-1` for the program's `harbor-vm-1-eip` under HarborVm (the node prefix pairs an EIP with its host key)."""
    if resource.resource().made_by("HarborVm", rf"(?:[1-9][0-9]*-)?{suffix}"):
        return resource.name.removesuffix(f"-{suffix}")
    return None


def _connection_problems(command: StackResource, by_urn: dict[str, StackResource]) -> list[Violation]:
    sources = [by_urn.get(urn) for urn in command.property_dependencies.get("connection") or []]
    by_type: dict[str, list[StackResource]] = {}
    for source in sources:
        if source is not None:
            by_type.setdefault(source.type, []).append(source)
    eips = by_type.get("aws:ec2/eip:Eip", [])
    host_keys = by_type.get("pulumi-python:dynamic/ec2:ConsoleHostKey", [])
    ssh_keys = by_type.get("tls:index/privateKey:PrivateKey", [])
    wanted = (
        len(sources) == 3
        and None not in sources
        and len(eips) == len(host_keys) == len(ssh_keys) == 1
        and _node_of(eips[0], "eip") is not None
        and _node_of(eips[0], "eip") == _node_of(host_keys[0], "host-key")
        and ssh_keys[0].resource().made_by("HarborVm", "ssh-key")
    )
    if not wanted:
        return [
            f"remote command {command.name!r} connects with {sorted(s.name if s else '<outside the stack>' for s in sources)}: "
            "its connection must be built from one of the program's VMs only (its EIP, its ConsoleHostKey, the stack's "
            "SSH key), so no secret on its stdin goes to another host"
        ]
    connection = command.props.get("connection")
    if is_unknown(connection):
        return []  # a fresh stack's preview: where it comes from is judged above, the values at the next preview
    connection = connection if isinstance(connection, Mapping) else {}
    problems = []
    # The value must be the source's: both unknown (created in this update) or both known and equal.
    for field_name, source, output in (("host", eips[0], "publicIp"), ("hostKey", host_keys[0], "public_key")):
        value, origin = connection.get(field_name), source.props.get(output)
        if is_unknown(value) != is_unknown(origin) or (not is_unknown(value) and str(value).strip() != str(origin).strip()):
            problems.append(
                f"remote command {command.name!r} connects to {field_name}={value!r}, not the {output} of {source.name!r} "
                f"({origin!r}): a remote command reaches only the program's VM, verified by its console host key"
            )
    return problems


def remote_commands_reach_the_programs_vms(resources: list[StackResource]) -> list[Violation]:
    """Every remote command belongs to the program's installer, probe or CAA component, and connects to one of
    the program's VMs: its connection comes from that VM's EIP and console host key (and the stack's SSH
    key), and at a preview of an existing stack its host and host key are those resources' values."""
    by_urn = _by_urn(resources)
    problems = []
    for command in (r for r in resources if r.type == "command:remote:Command"):
        if not any(command.resource().made_by(owner, r"[\w.-]+") for owner in COMMAND_OWNERS):
            problems.append(
                f"remote command {command.name!r} is not one of the program's ({', '.join(COMMAND_OWNERS)}): "
                "harbor-cache runs remote commands only from those components"
            )
            continue
        problems += _connection_problems(command, by_urn)
    return problems


_NODE = r"(?:[1-9][0-9]*-)?"  # node i > 0's resources: harbor-vm-<i>-... (components/aws/vm.py node_prefix)
PROGRAM_GROUPS = {
    "harbor-vm-sg": ("HarborVm", "sg"),
    "harbor-lb-sg": ("HarborLoadBalancer", "sg"),
    "harbor-data-db-sg": ("HarborDataServices", "db-sg"),
    "harbor-data-redis-sg": ("HarborDataServices", "redis-sg"),
    "harbor-data-client-sg": ("HarborDataServices", "client-sg"),
}


def _group_names(sources: tuple[Source, ...]) -> str | tuple[str, ...]:
    names = tuple(next(n for n, spec in PROGRAM_GROUPS.items() if spec == (owner, part)) for _, owner, part, _ in sources)
    return names[0] if len(names) == 1 else names


# Which of the program's security groups each reference names (fields.py's Reference rows judged by
# security-groups-are-the-programs, but the rules' groups, `ingress[].securityGroups[]`, judged by
# _rule_group_problems): (type, field) -> the program's group, by its full name. An instance is in the VM's group
# and, with externalServices, the stores' client group (its way to the stores): group_references() leaves the client
# group out of stacks without stores.
GROUP_REFERENCES: dict[tuple[str, str], str | tuple[str, ...]] = {
    (kind, path.removesuffix("[]")): _group_names(sources)
    for (kind, path), sources in references_judged_by(GROUPS).items()
    if "[]." not in path
}

CLIENT_GROUP_NAME = "harbor-data-client-sg"


def configured_replicas() -> int | None:
    """The stack's `replicas` (Pulumi.yaml default 1); None when it is not a number."""
    value = _stack_config("replicas")
    if value is None:
        return 1
    try:
        return int(str(value))
    except ValueError:
        return None


def stores_configured() -> bool:
    """Whether the program makes the stores and their client group for the stack's configuration: externalServices,
    which replicas > 1 turns on (components/settings/scale_settings.py parse_scale; components/harbor_cache.py makes
    HarborDataServices only `if settings.external_services`). `storage: s3` alone makes no store."""
    external = _stack_config("externalServices")
    return (configured_replicas() or 1) > 1 or external is True or str(external).lower() == "true"


def group_references() -> dict[tuple[str, str], str | tuple[str, ...]]:
    """GROUP_REFERENCES for the stack's configuration: an instance may join the stores' client group only where the
    program makes it (review 22d G1b: a pull request's client group under a HarborDataServices component passed in a
    stack without stores)."""
    if stores_configured():
        return GROUP_REFERENCES
    return {
        key: wanted if isinstance(wanted, str) else tuple(name for name in wanted if name != CLIENT_GROUP_NAME)
        for key, wanted in GROUP_REFERENCES.items()
    }



def _programs_group(resource: StackResource | None) -> str | None:
    if resource is None or resource.type != "aws:ec2/securityGroup:SecurityGroup":
        return None
    return next((name for name, (owner, part) in PROGRAM_GROUPS.items() if resource.resource().made_by(owner, part)), None)


def _in_the_programs_groups(sources: list[StackResource | None], value: Any, wanted: str | tuple[str, ...]) -> bool:
    """In exactly the program's group `wanted` (a name), or (a tuple) in its first group and any of the others, once
    each, every id the id of a group it comes from and every such group named."""
    required, *optional = (wanted,) if isinstance(wanted, str) else wanted
    named = [_programs_group(source) for source in sources]
    if required not in named or len(set(named)) != len(named) or not set(named) <= {required, *optional}:
        return False
    if is_unknown(value):
        return True  # the whole list unknown at a preview: judged by where it comes from
    ids = value if isinstance(value, list) else []
    return (
        len(ids) == len(sources)
        and all(any(holds_the_sources_value(id_, source, "id") for id_ in ids) for source in sources if source is not None)
        and all(any(holds_the_sources_value(id_, source, "id") for source in sources if source is not None) for id_ in ids)
    )


def _group_reference_problems(
    resource: StackResource, key: str, wanted: str | tuple[str, ...], by_urn: dict[str, StackResource]
) -> list[Violation]:
    sources = [by_urn.get(urn) for urn in resource.property_dependencies.get(key) or []]
    value = resource.props.get(key)
    if _in_the_programs_groups(sources, value, wanted):
        return []
    wanted = wanted if isinstance(wanted, str) else f"{wanted[0]} (and {', '.join(wanted[1:])})"
    return [
        f"{resource.type} {resource.name!r} is in security groups {value!r} (from {[s.name if s else None for s in sources]}): "
        f"it belongs in the program's {wanted} only, passed as that resource's id "
        f"({sources[0].props.get('id') if len(sources) == 1 and sources[0] else 'its id'}; no literal or pre-existing group)"
    ]


def _rule_group_problems(group: StackResource, key: str, by_urn: dict[str, StackResource]) -> list[Violation]:
    """A rule's source (ingress) or destination (egress) groups are the program's groups its `key` comes from, each
    named by that group's id."""
    rules = group.props.get(key)
    if is_unknown(rules) or not isinstance(rules, list):
        return []
    sources = [by_urn.get(urn) for urn in group.property_dependencies.get(key) or []]
    if key == "ingress" and group.resource().made_by("HarborLoadBalancer", "sg"):
        # The nodes' Elastic IPs, whose /32s it admits on 443: judged by load_balancer_admits_allowed_cidrs_and_its_nodes.
        sources = [source for source in sources if not _programs_eip(source)]
    referenced = sorted(
        {
            str(named)
            for rule in rules
            if isinstance(rule, Mapping)
            for named in (rule.get("securityGroups") if isinstance(rule.get("securityGroups"), list) else [])
        }
    )
    programs = [source for source in sources if _programs_group(source)]
    if len(programs) == len(sources) and all(
        any(holds_the_sources_value(named, source, "id") for source in programs) for named in referenced
    ):
        return []
    return [
        f"security group {group.name!r} names groups {referenced} in its {key} rules, from "
        f"{[s.name if s else None for s in sources]}: a rule's group is one of the program's, passed as its id "
        f"({sorted(str(s.props.get('id')) for s in programs)}; no literal group id)"
    ]


def security_groups_are_the_programs(resources: list[StackResource]) -> list[Violation]:
    """Every security-group reference is the id of the program's own group, from that group through property
    dependencies and equal to its id output, never a literal id (a pre-existing group, the VPC's default one): an
    instance, the load balancer, the database and Redis each in exactly their one group; a rule's groups only the
    program's."""
    by_urn = _by_urn(resources)
    problems = []
    for resource in resources:
        for (kind, key), wanted in group_references().items():
            if resource.type == kind:
                problems += _group_reference_problems(resource, key, wanted, by_urn)
        if resource.type == "aws:ec2/securityGroup:SecurityGroup":
            for key in ("ingress", "egress"):
                problems += _rule_group_problems(resource, key, by_urn)
    return problems


def _programs_eip(resource: StackResource | None) -> bool:
    return (
        resource is not None and resource.type == "aws:ec2/eip:Eip" and resource.resource().made_by("HarborVm", f"{_NODE}eip")
    )


def _node_address(block: Any, rule: Mapping, eips: list[StackResource]) -> bool:
    """Whether `block` is a node's Elastic IP on 443: at up a /32 equal to a program EIP's publicIp (among the
    rule's property dependencies); at a preview an unknown block made from such an EIP."""
    if not eips or rule.get("fromPort") != NODE_CHECK_PORT or rule.get("toPort") != NODE_CHECK_PORT:
        return False
    if is_unknown(block):
        return True
    try:
        network = ipaddress.ip_network(str(block), strict=True)
    except ValueError:
        return False
    return network.prefixlen == network.max_prefixlen and any(
        holds_the_sources_value(str(network.network_address), eip, "publicIp") for eip in eips
    )


def load_balancer_admits_allowed_cidrs_and_its_nodes(resources: list[StackResource]) -> list[Violation]:
    """The load balancer's group admits the stack's allowedCidrs and, on 443, each of the program's node Elastic
    IPs as a /32 (their reporters' public path checks), each from that EIP and equal to its publicIp; nothing else."""
    by_urn = _by_urn(resources)
    problems: list[Violation] = []
    for group in resources:
        if group.type != "aws:ec2/securityGroup:SecurityGroup" or not group.resource().made_by("HarborLoadBalancer", "sg"):
            continue
        rules = group.props.get("ingress")
        if is_unknown(rules) or not isinstance(rules, list):
            continue
        configured = _stack_config("allowedCidrs")
        if not isinstance(configured, list):
            problems.append(
                f"the load balancer's group {group.name!r} cannot be judged: the stack's configuration has no allowedCidrs"
            )
            continue
        allowed = set()
        for item in configured:
            try:
                allowed.add(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                continue
        eips = [s for s in (by_urn.get(urn) for urn in group.property_dependencies.get("ingress") or []) if _programs_eip(s)]
        for index, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            for key in ("cidrBlocks", "ipv6CidrBlocks"):
                blocks = rule.get(key)
                for block in [blocks] if is_unknown(blocks) else blocks if isinstance(blocks, list) else []:
                    try:
                        listed = not is_unknown(block) and ipaddress.ip_network(str(block), strict=False) in allowed
                    except ValueError:
                        listed = False
                    if not listed and not _node_address(block, rule, eips):
                        problems.append(
                            f"the load balancer's group {group.name!r} admits {block!r} (ingress rule {index}, port "
                            f"{rule.get('fromPort')}): only allowedCidrs {sorted(str(n) for n in allowed)} and, on 443, the "
                            "program's node Elastic IPs (each the /32 of a harbor-vm EIP's publicIp, from that resource)"
                        )
    return problems


ALARM_ACTION_FIELDS = ("alarmActions", "okActions", "insufficientDataActions")


def alarms_notify_the_programs_topic(resources: list[StackResource]) -> list[Violation]:
    """An alarm's SNS actions are the program's alarm topic (harbor-alarms-topic), from that resource, never
    a topic of another account or stack."""
    by_urn = _by_urn(resources)
    problems = []
    for alarm in (r for r in resources if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm"):
        for key in ALARM_ACTION_FIELDS:
            value = alarm.props.get(key)
            sources = [by_urn.get(urn) for urn in alarm.property_dependencies.get(key) or []]
            topics = [
                s
                for s in sources
                if s is not None and s.type == "aws:sns/topic:Topic" and s.resource().made_by("HarborAlarms", "topic")
            ]
            arns = {str(t.props.get("arn")) for t in topics if not is_unknown(t.props.get("arn"))}
            actions = value if isinstance(value, list) else [] if value is None else [value]
            sns = [str(a) for a in actions if is_unknown(a) or str(a).startswith("arn:aws") and ":sns:" in str(a)]
            if is_unknown(value) or any(is_unknown(a) for a in sns):
                wrong = len(topics) != len(sources) or not topics
            else:
                wrong = any(a not in arns for a in sns) or len(topics) != len(sources)
            if (sns or is_unknown(value)) and wrong:
                problems.append(
                    f"alarm {alarm.name!r} notifies {value!r} in {key}: only the program's alarm topic (harbor-alarms-topic), "
                    "passed as that resource's arn"
                )
    return problems


# Every aws:s3 type the pack allows besides the bucket itself (harbor_policies.py ALLOWED): each names its bucket.
BUCKET_SETTINGS = (
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
)

# Resources the pack has nothing to judge in alone, whose identity fields must come from the program's own
# resources and hold their value: the Reference rows of fields.py FIELDS this check judges, (type, field) -> the
# sources it may name (volume and EIP attachments, the key pair, the load balancer's target group, certificate and
# targets, the console host key's and the drain's instance, the registry bucket's settings: review 22c F3).
IDENTITY_SOURCES: dict[tuple[str, str], tuple[Source, ...]] = references_judged_by(IDENTITIES)
# References a resource may leave out (the HTTP listener has no certificate): absent, nothing to compare.
OPTIONAL_REFERENCES = {("aws:lb/listener:Listener", "certificateArn")}
# Where the program's notifications go (alarms: `alarms-notify-the-programs-topic`): the backup watch's targets and
# the topic policy it sets are the alarm topic's (components/aws/backup_watch.py), the stores' events go to their
# events topic (data_services.py), e-mail subscriptions subscribe to one of the two: fields.py's rows.
NOTIFICATION_SOURCES: dict[tuple[str, str], tuple[Source, ...]] = references_judged_by(NOTIFICATIONS)


def _field_values(props: Mapping[str, Any], key: str) -> list[Any]:
    """The values a field holds: `key`'s, or for "list[].field" each item's field (none when no item has one)."""
    outer, _, inner = key.partition("[].")
    if not inner:
        return [props.get(key)]
    items = props.get(outer)
    if is_unknown(items):
        return [items]
    return [item.get(inner) for item in items if isinstance(item, Mapping) and inner in item] if isinstance(items, list) else []


def _matching(source: StackResource | None, wanted: tuple[Source, ...]) -> Source | None:
    """Which of the program's resources `wanted` names `source` is (None: none of them)."""
    if source is None:
        return None
    return next((spec for spec in wanted if source.type == spec[0] and source.resource().made_by(spec[1], spec[2])), None)


def _references_problems(resources: list[StackResource], table: dict[tuple[str, str], tuple[Source, ...]]) -> list[Violation]:
    """Each field of `table` comes from exactly one resource, one of the program's the table names, and holds
    that resource's output."""
    by_urn = _by_urn(resources)
    problems = []
    for resource in resources:
        for (kind, key), wanted in table.items():
            values = _field_values(resource.props, key) if resource.type == kind else []
            if not values or (kind, key) in OPTIONAL_REFERENCES and values == [None]:
                continue
            sources = [by_urn.get(urn) for urn in resource.property_dependencies.get(key.partition("[].")[0]) or []]
            source = sources[0] if len(sources) == 1 else None
            spec = _matching(source, wanted)
            if spec is None or not all(holds_the_sources_value(value, source, spec[3]) for value in values):
                names = " or ".join(f"{owner}'s {part} ({kind_}, its {output})" for kind_, owner, part, output in wanted)
                problems.append(
                    f"{kind} {resource.name!r} sets {key} to {values!r}, not the program's {names}: pass the program's "
                    "resource, never a literal or a pre-existing one"
                )
    return problems


def identities_come_from_the_program(resources: list[StackResource]) -> list[Violation]:
    """A volume attachment joins the program's volume to the program's instance, an EIP association the
    program's EIP to its instance; instances use the program's key pair, made from the stack's SSH key; the
    load balancer forwards to the program's target group, which holds the program's instances: each field from
    that resource and holding its id (or name, key, ARN), never a literal or a pre-existing one."""
    return _references_problems(resources, IDENTITY_SOURCES)


def notifications_go_to_the_programs_topics(resources: list[StackResource]) -> list[Violation]:
    """The backup watch notifies (and sets the policy of) the program's alarm topic, the stores' events go to
    the program's events topic, subscriptions are to one of those: never another topic."""
    return _references_problems(resources, NOTIFICATION_SOURCES)


def _one_source(resource: StackResource, key: str, by_urn: dict[str, StackResource], kind: str, owner: str, part: str):
    """The one resource `key` comes from when it is the program's `owner`/`part` of type `kind`, else None."""
    source = _source(resource, key, by_urn)
    if source is None or source.type != kind or not source.resource().made_by(owner, part):
        return None
    return source


def _address_problems(record: StackResource, by_urn: dict[str, StackResource], balancer: StackResource | None) -> list:
    props = record.props
    records, aliases = props.get("records"), props.get("aliases")
    if balancer is not None:
        # replicas > 1: an alias of the program's load balancer (components/aws/dns.py), its name and zone.
        source = _one_source(record, "aliases", by_urn, balancer.type, "HarborLoadBalancer", "alb")
        items = [aliases] if is_unknown(aliases) else aliases if isinstance(aliases, list) else []
        alias = items[0] if len(items) == 1 else None
        good = (
            source is not None
            and records in (None, [])
            and alias is not None
            and (
                is_unknown(alias)
                or isinstance(alias, Mapping)
                and holds_the_sources_value(alias.get("name"), source, "dnsName")
                and holds_the_sources_value(alias.get("zoneId"), source, "zoneId")
            )
        )
        wanted = "an alias of the program's load balancer (harbor-lb-alb: its dnsName and zoneId)"
    else:
        # One VM: the program's EIP's address (components/aws/dns.py records=[public_ip]).
        source = _one_source(record, "records", by_urn, "aws:ec2/eip:Eip", "HarborVm", "eip")
        items = [records] if is_unknown(records) else records if isinstance(records, list) else []
        good = (
            source is not None
            and aliases in (None, [])
            and len(items) == 1
            and holds_the_sources_value(items[0], source, "publicIp")
        )
        wanted = "the program's Elastic IP's address (harbor-vm-eip's publicIp)"
    if good:
        return []
    return [
        f"the cache's name ({record.name!r}) points at records={records!r} aliases={aliases!r}: it holds exactly {wanted}, "
        "from that resource, never a literal address or another target"
    ]


def _caa_problems(record: StackResource, by_urn: dict[str, StackResource], balancer: StackResource | None) -> list:
    records = record.props.get("records")
    if balancer is not None:
        # replicas > 1: exactly acm_caa_records() (components/aws/caa.py), a literal set.
        if not is_unknown(records) and isinstance(records, list) and caa_shape(records) == "ha":
            return []
        return [f"the CAA record {record.name!r} holds {records!r}: with replicas > 1 exactly the program's ACM set"]
    # One VM: caa_records(<the acme-account command's stdout>), from that command (components/aws/caa.py).
    account = _one_source(record, "records", by_urn, "command:remote:Command", "HarborCaa", "acme-account")
    stdout = account.props.get("stdout") if account is not None else None
    if account is not None and is_unknown(records):
        return []  # a fresh preview: judged by where it comes from; the values at up
    if (
        account is not None
        and isinstance(records, list)
        and isinstance(stdout, str)
        and not is_unknown(stdout)
        and CAA_ACCOUNT_RE.fullmatch(f'0 issue "letsencrypt.org; accounturi={stdout.strip()}"')
        and sorted(str(r) for r in records)
        == sorted([f'0 issue "letsencrypt.org; accounturi={stdout.strip()}"', CAA_NO_WILDCARDS])
    ):
        return []
    return [
        f"the CAA record {record.name!r} holds {records!r}: on one VM exactly Let's Encrypt bound to the stack's own ACME "
        f"account (harbor-caa-acme-account's output {stdout!r}) and no wildcards, from that command"
    ]


VALIDATION_FIELDS = (("name", "resourceRecordName"), ("type", "resourceRecordType"), ("records", "resourceRecordValue"))


def _validation_problems(record: StackResource, by_urn: dict[str, StackResource]) -> list[Violation]:
    """Review 22f B2: ACM's validation CNAME is the program's certificate's own (components/aws/load_balancer.py: name,
    type and records=[value] from `domain_validation_options[0]` of harbor-lb-certificate). ACM issues a certificate
    to whoever requested it once the CNAME it gave that requester resolves (ACM User Guide, "DNS validation"); with
    replicas > 1 the CAA record admits amazon.com for any account, so a record holding another account's pair would
    validate that account's certificate for the cache's name. Each of name, type and records comes from that
    certificate alone; known values equal one of its domainValidationOptions[] (name, type, the one value); unknown
    ones (the certificate created or replaced in this update) are judged by that dependency here and by the lookup at
    `up` (policy/aws_lookups.py acm_validation)."""
    _, owner, part, output = VALIDATION
    sources = [_source(record, key, by_urn) for key, _ in VALIDATION_FIELDS]
    certificate = sources[0]
    records = record.props.get("records")
    values = [record.props.get("name"), record.props.get("type")]
    if is_unknown(records):
        values.append(records)
    elif isinstance(records, list) and len(records) == 1:
        values.append(records[0])
    options = certificate.props.get(output) if certificate is not None else None
    options = [o for o in options if isinstance(o, Mapping)] if isinstance(options, list) else []

    def holds(option: Mapping[str, Any]) -> bool:
        """Every known value equals the option's (an unknown one cannot be a literal: judged by its dependency)."""
        return all(
            is_unknown(value)
            or option.get(key) is not None
            and not is_unknown(option.get(key))
            and dns_name(value) == dns_name(option.get(key))
            for value, (_, key) in zip(values, VALIDATION_FIELDS, strict=True)
        )

    good = (
        len(values) == len(VALIDATION_FIELDS)
        and certificate is not None
        and all(source is certificate for source in sources)
        and certificate.type == VALIDATION[0]
        and certificate.resource().made_by(owner, part)
        and record.props.get("aliases") in (None, [])
        and (all(is_unknown(value) for value in values) or any(holds(option) for option in options))
    )
    if good:
        return []
    return [
        f"ACM's validation record {record.name!r} is name={record.props.get('name')!r} type={record.props.get('type')!r} "
        f"records={records!r}: it holds exactly the resourceRecordName, resourceRecordType and resourceRecordValue of "
        "the program's certificate (harbor-lb-certificate's domainValidationOptions), from that resource; another "
        "pair validates a certificate someone else requested for the cache's name"
    ]


def the_caches_name_is_the_programs(resources: list[StackResource]) -> list[Violation]:
    """The cache's A record holds the program's EIP address (one VM) or aliases the program's load balancer
    (replicas > 1), from that resource; its CAA record names the stack's own ACME account (one VM) or is exactly
    the program's ACM set (replicas > 1); ACM's validation record is the program's certificate's validation CNAME,
    from it. Which mode: whether the program's load balancer is in the stack."""
    by_urn = _by_urn(resources)
    balancer = next(
        (
            r
            for r in resources
            if r.type == "aws:lb/loadBalancer:LoadBalancer" and r.resource().made_by("HarborLoadBalancer", "alb")
        ),
        None,
    )
    problems = []
    for record in (r for r in resources if r.type == "aws:route53/record:Record"):
        if record.resource().made_by("HarborDns", "a"):
            problems += _address_problems(record, by_urn, balancer)
        elif record.resource().made_by("HarborCaa", "caa"):
            problems += _caa_problems(record, by_urn, balancer)
        elif record.resource().made_by("HarborLoadBalancer", "certificate-validation"):
            problems += _validation_problems(record, by_urn)
    return problems


# Where the dashboard's body comes from (components/harbor_cache.py HarborDashboardArgs): the alarms' ARNs, the load
# balancer's CloudWatch dimension (arn_suffix) and the certificate's ARN.
DASHBOARD_SOURCES = (
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "HarborAlarms", r"[\w-]+"),
    ("aws:lb/loadBalancer:LoadBalancer", "HarborLoadBalancer", "alb"),
    ("aws:acm/certificate:Certificate", "HarborLoadBalancer", "certificate"),
)


def the_dashboard_shows_the_programs_own(resources: list[StackResource]) -> list[Violation]:
    """The program's dashboard body, where a preview does not know it (reading.py KNOWN_ONLY_AT_UP), is made from the
    program's alarms, load balancer and certificate only: its content (widget types, metric math) is judged at `up`,
    before the step, by the dashboard's own check (resource_checks.py cloudwatch_dashboard)."""
    by_urn = _by_urn(resources)
    problems = []
    for dashboard in (r for r in resources if r.type == "aws:cloudwatch/dashboard:Dashboard"):
        if not is_unknown(dashboard.props.get("dashboardBody")):
            continue  # known: the dashboard's own check parses it
        sources = [by_urn.get(urn) for urn in dashboard.property_dependencies.get("dashboardBody") or []]
        if not all(
            source is not None
            and any(source.type == kind and source.resource().made_by(owner, part) for kind, owner, part in DASHBOARD_SOURCES)
            for source in sources
        ):
            problems.append(
                f"dashboard {dashboard.name!r}'s body, unknown at this preview, is made from "
                f"{sorted(s.name if s else '<outside the stack>' for s in sources)}: the program's dashboard shows its "
                "alarms, load balancer and certificate only"
            )
    return problems


def _has_credential(registry: StackResource) -> bool:
    """Whether the registry carries an upstream credential: its outputs keep only the credential's hash, empty
    without one (components/harbor/registry.py RegistryProvider.outputs, provider_base.secret_hash); at a preview of
    its update the state is its new inputs, access_key and access_secret (pulumi
    sdk/go/common/resource/plugin/provider_plugin.go Update: a provider without previews returns the inputs as the
    state); an unknown counts as a credential."""
    values = [registry.props.get(key) for key in ("access_key", "access_secret", "credential_hash")]
    return any(is_unknown(value) or value not in (None, "") for value in values)


def _other_registry(project: StackResource, registry: StackResource) -> bool:
    """Whether the project names another registry than the one it comes from: both ids known and different (the
    registry's `registry_id` output, components/harbor/registry.py outputs; absent from the inputs a preview of its
    update hands as its state, when the project is judged by its dependency alone)."""
    value, origin = project.props.get("registry_id"), registry.props.get("registry_id")
    if is_unknown(value) or is_unknown(origin) or origin is None:
        return False
    try:
        return float(value) != float(origin)
    except (TypeError, ValueError):
        return True


def public_projects_relay_no_credentials(resources: list[StackResource]) -> list[Violation]:
    """A public proxy project's registry carries no upstream credential, unless the stack's configuration allows
    it for that upstream (allowCredentialedPublic, components/settings/upstreams.py); a public project names its
    registry by that resource."""
    by_urn = _by_urn(resources)
    problems = []
    for project in (r for r in resources if r.type == "pulumi-python:dynamic/harbor:Project"):
        if project.props.get("public") is False:
            continue
        registry = _source(project, "registry_id", by_urn)
        if registry is None or registry.type != "pulumi-python:dynamic/harbor:Registry" or _other_registry(project, registry):
            problems.append(
                f"public project {project.name!r} names registry {project.props.get('registry_id')!r} from "
                f"{registry.name if registry else None!r}: a public project names the program's Registry resource it "
                "comes from (its registry_id), whose credential the pack can see"
            )
        elif _has_credential(registry) and not credentialed_public_allowed(str(registry.props.get("name"))):
            problems.append(
                f"project {project.name!r} is public and its registry {registry.name!r} carries an upstream credential: "
                "Harbor would pull with it for everyone allowed in; set public: false, or allowCredentialedPublic: true on "
                "that upstream with a credential that reads public content only"
            )
    return problems


STACK_CHECKS: dict[str, tuple[str, StackCheck]] = {
    "the-caches-name-is-the-programs": (
        "The cache's A record is the program's EIP or load balancer; its CAA record names the stack's own ACME account; "
        "ACM's validation record is the program's certificate's.",
        the_caches_name_is_the_programs,
    ),
    "the-dashboard-shows-the-programs-own": (
        "The program's dashboard body, where a preview does not know it, is made from the program's alarms, load "
        "balancer and certificate only.",
        the_dashboard_shows_the_programs_own,
    ),
    "public-projects-relay-no-credentials": (
        "A public proxy project's registry carries no upstream credential unless the settings allow it.",
        public_projects_relay_no_credentials,
    ),
    "identities-come-from-the-program": (
        "Volume attachments, EIP associations, key names, key pairs and load balancer targets are the program's own resources.",
        identities_come_from_the_program,
    ),
    "notifications-go-to-the-programs-topics": (
        "The backup watch, the stores' events and e-mail subscriptions use the program's own SNS topics.",
        notifications_go_to_the_programs_topics,
    ),
    "alarms-notify-the-programs-topic": (
        "Alarms notify only the program's alarm topic.",
        alarms_notify_the_programs_topic,
    ),
    "security-groups-are-the-programs": (
        "Instances, the load balancer and the stores are each in the program's own group; rules admit only its groups.",
        security_groups_are_the_programs,
    ),
    "load-balancer-admits-allowed-cidrs-and-its-nodes": (
        "The load balancer's group admits allowedCidrs and, on 443, the program's node Elastic IPs only.",
        load_balancer_admits_allowed_cidrs_and_its_nodes,
    ),
    "remote-commands-reach-the-programs-vms": (
        "Remote commands are the program's, and connect to the program's VM with its console host key.",
        remote_commands_reach_the_programs_vms,
    ),
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
