"""Stack checks of the VM's (the nodes') security groups, exact against the stack's configuration.

The resource check (resource_checks.py ec2_security_group) judges a group's width alone: a foreign /32 on 443 is
not too wide and passed it. Here the VM's group is judged against what the program derives from the stack's
configuration (components/aws/network_rules.py ingress_rules): on each port exactly the addresses (or the load
balancer's group) the settings give that port, counting its inline rules and every stand-alone rule on it. And the
VM's way to the stores (components/aws/data_services.py client group): on the stores' ports egress goes only to the
program's store groups, never to address blocks (the VPC's CIDR reached every database in it).

The configuration is what the engine hands the pack (PULUMI_CONFIG, resource_checks._stack_config), which holds every
Pulumi.yaml default the stack does not set (the CLI merges them before the update: pulumi pkg/workspace/config.go
ValidateStackConfigAndApplyProjectConfig); absent keys take the program's defaults here too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import stack_checks
from reading import Violation, is_unknown
from resource_checks import (
    CACHE_METRICS_PORT,
    DATABASE_PORTS,
    METRICS_PORT,
    NODE_HTTP_PORT,
    WEB_PORTS,
    _stack_config,
    world_egress_ports,
)
from stack_checks import StackResource, _by_urn, _programs_group

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
# Stand-alone rules on a group (the type check refuses them: `only-the-programs-resource-types`; counted here as
# well, so the group's rules are judged together whatever the type table says): type -> how each names its parts.
GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC_EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
# The program's VM (nodes') group and, with externalServices, the group its instances join to reach the stores.
VM_GROUP = ("HarborVm", "sg")
CLIENT_GROUP = ("HarborDataServices", "client-sg")
# What the stores listen on (components/aws/data_services.py POSTGRES_PORT, REDIS_PORT) and the program's group of each.
STORE_GROUPS = {DATABASE_PORTS[0]: "harbor-data-db-sg", DATABASE_PORTS[1]: "harbor-data-redis-sg"}


class Admitted:
    """What a group's rules let through, port by port: address blocks, groups, and what cannot be judged."""

    def __init__(self) -> None:
        self.blocks: dict[int, list[Network]] = {}
        self.groups: dict[int, list[tuple[Any, list[StackResource | None]]]] = {}
        self.problems: list[Violation] = []

    def add(self, where: str, rule: Mapping[str, Any], sources: list[StackResource | None]) -> None:
        """One rule, in the inline shape (protocol, fromPort, toPort, cidrBlocks, ipv6CidrBlocks, securityGroups,
        prefixListIds, self); `sources` the resources its groups may come from (property dependencies)."""
        protocol = str(rule.get("protocol")).lower()
        low, high = rule.get("fromPort"), rule.get("toPort")
        if protocol not in ("tcp", "6") or low != high or not isinstance(low, int | float) or isinstance(low, bool):
            self.problems.append(
                f"{where} admits protocol {rule.get('protocol')!r} ports {low!r}-{high!r}: the program admits single tcp ports"
            )
            return
        port = int(low)
        if rule.get("self") is True or is_unknown(rule.get("self")) or _listed(rule.get("prefixListIds")):
            self.problems.append(f"{where} admits the group itself or a prefix list on {port}: the program admits neither")
        for key in ("cidrBlocks", "ipv6CidrBlocks"):
            for block in _listed(rule.get(key)):
                try:
                    self.blocks.setdefault(port, []).append(ipaddress.ip_network(str(block), strict=False))
                except ValueError:
                    self.problems.append(f"{where} admits {block!r} on {port}, which is not a known CIDR block")
        for group in _listed(rule.get("securityGroups")):
            self.groups.setdefault(port, []).append((group, sources))


def _listed(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _config_networks(key: str) -> list[Network] | None:
    """A CIDR list of the stack's configuration; None when it is not a list of CIDRs."""
    value = _stack_config(key)
    if not isinstance(value, list):
        return None
    try:
        return [ipaddress.ip_network(str(item), strict=False) for item in value]
    except ValueError:
        return None


def _expected_ingress() -> tuple[dict[int, list[Network]], bool] | str:
    """What components/aws/network_rules.py ingress_rules admits for the stack's configuration: per port its address
    blocks, and whether 8080 takes the load balancer's group (replicas > 1); or why it cannot be known."""
    replicas = stack_checks.configured_replicas()
    allowed, ssh = _config_networks("allowedCidrs"), _config_networks("sshAllowedCidrs")
    metrics = [] if _stack_config("metricsAllowedCidrs") in (None, "", []) else _config_networks("metricsAllowedCidrs")
    read = {"replicas": replicas, "allowedCidrs": allowed, "sshAllowedCidrs": ssh, "metricsAllowedCidrs": metrics}
    for key, value in read.items():
        if value is None:
            return f"the stack's configuration has no readable {key}"
    assert replicas is not None and allowed is not None and ssh is not None and metrics is not None
    behind_load_balancer = replicas > 1
    expected: dict[int, list[Network]] = {} if behind_load_balancer else {port: allowed for port in WEB_PORTS}
    expected[22] = ssh
    if metrics:
        expected[METRICS_PORT] = expected[CACHE_METRICS_PORT] = metrics
    return expected, behind_load_balancer


def _addresses(networks: list[Network]) -> list[Network]:
    """The addresses the blocks cover together, IPv4 then IPv6 (an exact set, however the blocks are cut)."""
    return [n for version in (4, 6) for n in ipaddress.collapse_addresses(x for x in networks if x.version == version)]


def _admitted(rules: list[tuple[str, Mapping[str, Any], list[StackResource | None]]]) -> Admitted:
    admitted = Admitted()
    for where, rule, sources in rules:
        admitted.add(where, rule, sources)
    return admitted


def _other_addresses(admitted: Admitted, wanted: dict[int, list[Network]]) -> list[tuple[int, list[str], list[str]]]:
    """(port, the addresses the rules cover, those wanted) for each port where the two differ as address sets."""
    differing = []
    for port in sorted({*wanted, *admitted.blocks}):
        have, want = _addresses(admitted.blocks.get(port, [])), _addresses(wanted.get(port, []))
        if have != want:
            differing.append((port, [str(n) for n in have], [str(n) for n in want]))
    return differing


def _rules_on(
    group: StackResource, resources: list[StackResource], direction: str, by_urn: dict[str, StackResource]
) -> list[tuple[str, Mapping[str, Any], list[StackResource | None]]]:
    """The group's rules in `direction` ("ingress" or "egress"): its inline ones and every stand-alone rule that comes
    from it (a property dependency of securityGroupId) or names its id, each in the inline shape with the resources its
    group reference may come from."""
    found: list[tuple[str, Mapping[str, Any], list[StackResource | None]]] = []
    inline = group.props.get(direction)
    inline_sources = [by_urn.get(urn) for urn in group.property_dependencies.get(direction) or []]
    for index, rule in enumerate(inline if isinstance(inline, list) else []):
        if isinstance(rule, Mapping):
            found.append((f"{group.name}'s {direction} rule {index}", rule, inline_sources))
    group_id = group.props.get("id")
    for rule in resources:
        if rule.type not in (GROUP_RULE, VPC_INGRESS_RULE, VPC_EGRESS_RULE):
            continue
        target = rule.props.get("securityGroupId")
        on_it = group.urn in (rule.property_dependencies.get("securityGroupId") or []) or (
            group_id is not None and not is_unknown(group_id) and str(target).strip() == str(group_id).strip()
        )
        if not on_it:
            continue
        props = rule.props
        if rule.type == GROUP_RULE:
            if props.get("type") != direction:
                continue
            shape = {**props, "securityGroups": _listed(props.get("sourceSecurityGroupId"))}
            key = "sourceSecurityGroupId"
        else:
            if (rule.type == VPC_INGRESS_RULE) != (direction == "ingress"):
                continue
            shape = {
                "protocol": props.get("ipProtocol"),
                "fromPort": props.get("fromPort"),
                "toPort": props.get("toPort"),
                "cidrBlocks": _listed(props.get("cidrIpv4")),
                "ipv6CidrBlocks": _listed(props.get("cidrIpv6")),
                "securityGroups": _listed(props.get("referencedSecurityGroupId")),
                "prefixListIds": _listed(props.get("prefixListId")),
            }
            key = "referencedSecurityGroupId"
        sources = [by_urn.get(urn) for urn in rule.property_dependencies.get(key) or []]
        found.append((f"stand-alone rule {rule.name!r} on {group.name}", shape, sources))
    return found


def _holds_group(value: Any, sources: list[StackResource | None], wanted: str) -> bool:
    """Whether a rule's group reference is the program's group `wanted`, from that resource and holding its id."""
    return any(
        _programs_group(source) == wanted and stack_checks.holds_the_sources_value(value, source, "id")
        for source in sources
        if source is not None
    )


def _instance_groups(resources: list[StackResource]) -> list[StackResource]:
    """The groups the VM's (nodes') traffic passes: the VM's own, the stores' client group, and any other group an
    instance of the stack joins (the property dependencies of its vpcSecurityGroupIds)."""
    joined = {
        urn
        for instance in resources
        if instance.type == "aws:ec2/instance:Instance"
        for urn in instance.property_dependencies.get("vpcSecurityGroupIds") or []
    }
    return [
        group
        for group in resources
        if group.type == SECURITY_GROUP
        and (group.urn in joined or group.resource().made_by(*VM_GROUP) or group.resource().made_by(*CLIENT_GROUP))
    ]


def _client_group_ingress_problems(group: StackResource, rules: list) -> list[Violation]:
    """The stores' client group admits nothing (components/aws/data_services.py: ingress=[]); it only lets the VM out
    to the stores (review 22d G1: a foreign network on 22 or 443 there reached the instance that joins it)."""
    if not rules:
        return []
    return [
        f"the stores' client group {group.name!r} admits {[where for where, _, _ in rules]}: the program's admits nothing "
        "(ingress=[]), the VM's own group admits what the settings say; remove the rules"
    ]


def _vm_group_ingress_problems(group: StackResource, rules: list) -> list[Violation]:
    """The VM's (nodes') group, port by port, against components/aws/network_rules.py ingress_rules."""
    expected = _expected_ingress()
    if isinstance(expected, str):
        return [f"the VM's group {group.name!r} cannot be judged: {expected}"]
    wanted, behind_load_balancer = expected
    admitted = _admitted(rules)
    problems = [f"the VM's group {group.name!r}: {problem}" for problem in admitted.problems]
    for port, have, want in _other_addresses(admitted, wanted):
        problems.append(
            f"the VM's group {group.name!r} admits {have} on {port}, where the stack's configuration gives {want} "
            "(allowedCidrs on 443/80 of one VM, sshAllowedCidrs on 22, metricsAllowedCidrs on 9090/9091): admit exactly "
            "what the settings say, nothing beside it"
        )
    for port, references in sorted(admitted.groups.items(), key=lambda item: item[0]):
        wrong = [value for value, sources in references if not _holds_group(value, sources, "harbor-lb-sg")]
        if port != NODE_HTTP_PORT or not behind_load_balancer or wrong:
            problems.append(
                f"the VM's group {group.name!r} admits groups {[value for value, _ in references]!r} on {port}: only "
                "the nodes (replicas > 1) admit a group, the program's load balancer's (harbor-lb-sg, its id) on "
                f"{NODE_HTTP_PORT}"
            )
    if behind_load_balancer and not admitted.groups.get(NODE_HTTP_PORT):
        problems.append(
            f"the nodes' group {group.name!r} does not admit the load balancer's group on {NODE_HTTP_PORT} (replicas > 1)"
        )
    return problems


# Where the VM's own group lets traffic out (components/aws/network_rules.py egress_rules): each of the world egress
# ports (80, 443 and an upstream's own port the settings open, resource_checks.world_egress_ports, as egress_ports
# derives them) to the world, IPv4 and IPv6; nothing else, no group (the stores are reached through their client group).
WORLD = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]


def _vm_group_egress_problems(group: StackResource, rules: list) -> list[Violation]:
    """The VM's (nodes') group's egress, port by port, exactly the program's (review 22d G2: 3306, 2049, 27017... to
    the VPC's blocks passed, since only 5432 and 6379 were judged and the resource check refuses only the world)."""
    sent = _admitted(rules)
    problems = [f"the VM's group {group.name!r} (egress): {problem}" for problem in sent.problems]
    for port, have, want in _other_addresses(sent, {port: WORLD for port in world_egress_ports()}):
        problems.append(
            f"the VM's group {group.name!r} lets {port} out to {have}, where the program sends {want} (80, 443 and an "
            "upstream's own port with allowCustomPortEgress, to the world; components/aws/network_rules.py egress_rules): "
            "no other port, no private block (other databases of the VPC)"
        )
    if sent.groups:
        named = sorted(str(value) for references in sent.groups.values() for value, _ in references)
        problems.append(
            f"the VM's group {group.name!r} lets traffic out to groups {named}: "
            "the program's sends to none (the VM reaches the stores through their client group)"
        )
    return problems


def _client_group_egress_problems(group: StackResource, rules: list) -> list[Violation]:
    """The stores' client group lets out 5432 and 6379 to the store groups only (components/aws/network_rules.py
    store_egress; which group on which port: vm_reaches_only_the_programs_stores): no address block, no other port."""
    sent = _admitted(rules)
    problems = [f"the stores' client group {group.name!r} (egress): {problem}" for problem in sent.problems]
    blocks = sorted(str(n) for networks in sent.blocks.values() for n in networks)
    others = sorted(port for port in sent.groups if port not in STORE_GROUPS)
    if blocks or others:
        problems.append(
            f"the stores' client group {group.name!r} lets traffic out to {blocks} and groups on {others}: the program's "
            f"sends only {sorted(STORE_GROUPS)} to the store groups, nothing else"
        )
    return problems


def vm_group_admits_exactly_the_settings(resources: list[StackResource]) -> list[Violation]:
    """Every group an instance joins (review 22d G1: the VM's alone was judged) admits exactly what the program makes
    it admit: the VM's (nodes') group, port by port, what the program derives from the stack's configuration
    (components/aws/network_rules.py ingress_rules): one VM 443 and 80 from allowedCidrs, nodes (replicas > 1) 8080
    from the load balancer's group only; 22 from sshAllowedCidrs; with metricsAllowedCidrs 9090 and 9091 from them;
    nothing else; the stores' client group nothing; any other group an instance joins is judged as the VM's. And what
    they let out (review 22d G2): the VM's group exactly components/aws/network_rules.py egress_rules, the client group
    only the store ports to groups. Counting inline rules and stand-alone rules on the group."""
    by_urn = _by_urn(resources)
    problems: list[Violation] = []
    for group in _instance_groups(resources):
        if is_unknown(group.props.get("ingress")):
            problems.append(
                f"the VM's group {group.name!r} cannot be judged: its ingress is unknown (the program's is known at preview)"
            )
            continue
        rules = _rules_on(group, resources, "ingress", by_urn)
        client = group.resource().made_by(*CLIENT_GROUP)
        problems += _client_group_ingress_problems(group, rules) if client else _vm_group_ingress_problems(group, rules)
        if is_unknown(group.props.get("egress")):
            problems.append(f"the VM's group {group.name!r} cannot be judged: its egress is unknown")
            continue
        rules = _rules_on(group, resources, "egress", by_urn)
        problems += _client_group_egress_problems(group, rules) if client else _vm_group_egress_problems(group, rules)
    return problems


def _covers(rule: Mapping[str, Any], port: int) -> bool:
    """Whether a rule (inline shape) lets `port` through: all protocols, or tcp over a range holding it; an unknown
    protocol or port counts as covering it (fail closed)."""
    protocol = rule.get("protocol")
    if is_unknown(protocol) or str(protocol).lower() in ("-1", "all"):
        return True
    if str(protocol).lower() not in ("tcp", "6"):
        return False
    low, high = rule.get("fromPort"), rule.get("toPort")
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in (low, high)):
        return True
    return low <= port <= high


def _store_rule_problems(where: str, rule: Mapping[str, Any], sources: list[StackResource | None]) -> list[Violation]:
    """A rule that lets a store port out: exactly that tcp port, to that store's group (its id, from it), nothing else.
    World egress the settings allow on an upstream's own port (allowCustomPortEgress) is the resource check's."""
    problems = []
    for port, store in sorted(STORE_GROUPS.items()):
        if not _covers(rule, port):
            continue
        blocks = [*_listed(rule.get("cidrBlocks")), *_listed(rule.get("ipv6CidrBlocks")), *_listed(rule.get("prefixListIds"))]
        groups = _listed(rule.get("securityGroups"))
        single = str(rule.get("protocol")).lower() in ("tcp", "6") and rule.get("fromPort") == rule.get("toPort") == port
        if single and port in world_egress_ports() and not groups:
            continue  # an upstream's own port the settings open to the world: the resource check's
        wrong = [group for group in groups if not _holds_group(group, sources, store)]
        if not single or blocks or rule.get("self") is True or is_unknown(rule.get("self")) or wrong or not groups:
            problems.append(
                f"{where} lets {rule.get('protocol')!r} {rule.get('fromPort')!r}-{rule.get('toPort')!r} out to "
                f"{blocks + groups!r}, which holds the store port {port}: the VM reaches {port} only at the program's {store} "
                "(one tcp rule naming that group's id, from it), never address blocks (every database of the VPC)"
            )
    return problems


def vm_reaches_only_the_programs_stores(resources: list[StackResource]) -> list[Violation]:
    """On the stores' ports (PostgreSQL 5432, Redis 6379) the VM's (nodes') groups, its own and the stores' client
    group (and any group an instance of the stack joins), let traffic out only to the program's store group of that
    port, named by its id and coming from it: never to address blocks (the VPC's CIDR held every database in it) and
    never to another group; counting inline rules and stand-alone rules on the groups."""
    by_urn = _by_urn(resources)
    problems: list[Violation] = []
    for group in _instance_groups(resources):
        if is_unknown(group.props.get("egress")):
            problems.append(f"the VM's group {group.name!r} cannot be judged: its egress is unknown")
            continue
        for where, rule, sources in _rules_on(group, resources, "egress", by_urn):
            problems += _store_rule_problems(where, rule, sources)
    return problems


GROUP_CHECKS: dict[str, tuple[str, stack_checks.StackCheck]] = {
    "vm-group-admits-exactly-the-settings": (
        "The groups the VM (nodes) joins admit and let out exactly what the program makes them: the VM's what the "
        "configuration gives it on each port, the stores' client group nothing in and only the stores out.",
        vm_group_admits_exactly_the_settings,
    ),
    "vm-reaches-only-the-programs-stores": (
        "On 5432 and 6379 the VM's groups let traffic out only to the program's database and Redis groups.",
        vm_reaches_only_the_programs_stores,
    ),
}
