"""Stack checks: where values come from. The engine's AnalyzeStack hands every resource with its
property dependencies (the URNs each input came from), which are known at preview even when the
values are not."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reading import Resource, Review, Undecidable, Violation, is_unknown, statements
from resource_checks import (
    ACME_PREFIX,
    BUCKET_ARN_RE,
    DLM_SERVICE,
    DNS01_CHANGE,
    DNS01_NAMES_KEY,
    EC2_SERVICE,
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
