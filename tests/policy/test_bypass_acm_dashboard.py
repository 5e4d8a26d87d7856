"""Bypass corpus of review 22f B2 and L1 (issue 22), written as tests/policy/test_policy_bypass.py's: each probe a
resource of the program's stack changed as a pull request could change it, run through the pack as the engine runs it
(its own entry point over the analyzer's gRPC protocol, tests/standins/policy_engine.py `running_pack`: Analyze per
resource, AnalyzeStack for the whole stack), at preview and at `up` (the AWS lookups against moto on loopback). Each
probe passed the pack on main dad5a47 (review 22f's probes, kept outside the repository); now each is refused. The program's own
stacks pass in every mode (tests/policy/test_policies.py test_every_mode_passes_*).

B2: ACM's validation CNAME (`harbor-lb-certificate-validation`, replicas > 1) was bound to nothing: with the CAA record
admitting amazon.com for any account, the record could hold another account's validation pair and validate its
certificate for the cache's name. L1: the dashboard's name and body were harmless Values: another name replaces (and
`pulumi destroy` deletes) a dashboard that is not the stack's; a `custom` widget or a LAMBDA metric math data source
runs a Lambda function for whoever opens the dashboard."""

from __future__ import annotations

import copy
import json
import sys

import pytest
from pulumi.runtime import rpc

from tests.paths import ROOT  # noqa: I001

sys.path.insert(0, str(ROOT / "policy"))

import resource_checks  # noqa: E402

from tests.standins.policy_engine import (  # noqa: E402
    WITHOUT_AWS_LOOKUPS,
    EngineResource,
    changed,
    engine_resources,
    registration_of,
    replaced_at_preview,
    run_program,
    running_pack,
)
from tests.standins.pulumi_harness import alarm_arn, dev_config  # noqa: E402

HA = {**dev_config(), "harbor-cache:replicas": 2}
HOSTNAME = HA["harbor-cache:hostname"]
VALIDATION = "harbor-lb-certificate-validation"
CERTIFICATE = "harbor-lb-certificate"
CACHE_NAME = "the-caches-name-is-the-programs"
AT_UP = "references-are-the-stacks-own-at-up"
# Another account's ACM request for the cache's name, as ACM names its pair (review 22f B2's probe).
FOREIGN_NAME = f"_0123456789abcdef0123456789abcdef.{HOSTNAME}."
FOREIGN_VALUE = "_fedcba9876543210fedcba9876543210.xlfgrmvvlj.acm-validations.aws."

DASHBOARD = "harbor-dashboard"
DASHBOARD_TYPE = "aws:cloudwatch/dashboard:Dashboard"
DASHBOARD_POLICY = "aws-cloudwatch-dashboard-dashboard"
DASHBOARD_ORIGIN = "the-dashboard-shows-the-programs-own"
ALARM_TYPE = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(scope="module")
def ha() -> list[EngineResource]:
    return engine_resources(run_program(HA))


@pytest.fixture(scope="module")
def dev() -> list[EngineResource]:
    return engine_resources(run_program(dev_config()))


def swapped(stack: list[EngineResource], probe: EngineResource) -> list[EngineResource]:
    return [probe if r.urn == probe.urn else r for r in stack]


def refused(pack, resources: list[EngineResource]) -> dict[str, list[str]]:
    """Every mandatory refusal of a preview or an up of `resources` (Analyze each, then AnalyzeStack), by policy."""
    found: dict[str, list[str]] = {}
    for diagnostic in pack.analyze_all(resources):
        if diagnostic.mandatory:
            found.setdefault(diagnostic.policy, []).append(diagnostic.message)
    return found


# ---------------------------------------------------------------------------------------------
# B2: ACM's validation record is the program's certificate's


def _validation(**values):
    def change(props):
        props.update(values)

    return change


B2_PREVIEW_PROBES = {
    # The review's probe: another account's pair, known at preview (an existing stack).
    "another-accounts-pair": {"name": FOREIGN_NAME, "records": [FOREIGN_VALUE]},
    # Only the value: the program's name pointing at another account's token.
    "another-value": {"records": [FOREIGN_VALUE]},
    # Only the name: another account's name holding the program's value.
    "another-name": {"name": FOREIGN_NAME},
    # The program's value and a second one.
    "two-values": {"records": ["_7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d.zfyfvmchrl.acm-validations.aws.", FOREIGN_VALUE]},
}


@pytest.mark.parametrize("label", sorted(B2_PREVIEW_PROBES))
def test_another_validation_pair_is_refused_at_preview(ha, label):
    """B2: the validation record changed (its dependency on the certificate kept, as `dvo.apply(lambda _: ...)` keeps
    it) is refused by the stack check at preview; the program's own record passes."""
    probe = changed(ha, VALIDATION, _validation(**B2_PREVIEW_PROBES[label]))
    with running_pack(dry_run=True, config=HA, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert refused(pack, ha) == {}
        found = refused(pack, swapped(ha, probe))
    assert list(found) == [CACHE_NAME], found
    assert "harbor-lb-certificate's domainValidationOptions" in found[CACHE_NAME][0]


def test_the_validation_record_comes_from_the_certificate_alone(ha):
    """B2: the program's own values, but copied as literals (no dependency on the certificate), or made from another
    resource, are refused: the record holds the certificate's output, from it."""
    literal = changed(ha, VALIDATION, lambda p: None)
    literal.property_dependencies = {key: [] for key in literal.property_dependencies}
    other = copy.deepcopy(registration_of(ha, VALIDATION))
    balancer = registration_of(ha, "harbor-lb-alb").urn
    other.property_dependencies = {**other.property_dependencies, "records": [balancer]}
    with running_pack(dry_run=True, config=HA, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        for probe in (literal, other):
            assert list(refused(pack, swapped(ha, probe))) == [CACHE_NAME], probe.property_dependencies


def test_a_literal_where_the_certificates_pair_is_unknown_is_refused_at_preview(ha):
    """B2: the certificate replaced in the update (its domainValidationOptions unknown at the preview): the program's
    record is unknown too and passes by its dependency; a known literal beside that dependency is refused."""
    preview = replaced_at_preview(ha, [CERTIFICATE])
    record = registration_of(preview, VALIDATION)
    assert record.inputs["name"] == record.outputs["records"] == rpc.UNKNOWN
    probe = changed(preview, VALIDATION, _validation(name=FOREIGN_NAME, type="CNAME", records=[FOREIGN_VALUE]))
    with running_pack(dry_run=True, config=HA, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        # replaced_at_preview leaves the CertificateValidation's and the listener's certificateArn known (it does not
        # model their own updates), which identities-come-from-the-program refuses: only the record's check counts here.
        before = refused(pack, preview)
        after = refused(pack, swapped(preview, probe))
    assert CACHE_NAME not in before and set(after) - set(before) == {CACHE_NAME}, after


def test_the_validation_record_holds_no_alias(ha):
    alias = {"name": "elsewhere.example.com", "zoneId": "Z2IFOLAFXWLO4F", "evaluateTargetHealth": False}
    probe = changed(ha, VALIDATION, lambda p: p.update(aliases=[alias]))
    with running_pack(dry_run=True, config=HA, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert {"aws-route53-record-record", CACHE_NAME} <= set(refused(pack, swapped(ha, probe)))


@pytest.fixture
def ha_in_aws(ha, aws):
    from tests.standins.moto_stack import in_aws

    return in_aws(ha, aws[0])


def test_another_validation_pair_is_refused_at_up_before_the_step(ha_in_aws, aws):
    """B2 at `up`: where the preview could not know the values (the certificate new or replaced, the record made from
    it through `apply`), Analyze looks the record up before its step: it must be the validation record of one of this
    stack's certificates (ACM ListCertificates, DescribeCertificate, ListTagsForCertificate). The program's own passes,
    every other pair is refused."""
    stack = ha_in_aws
    with running_pack(dry_run=False, config=HA, env=aws[1]) as pack:
        assert [d for d in pack.analyze(registration_of(stack, VALIDATION)) if d.mandatory] == []
        for label, values in B2_PREVIEW_PROBES.items():
            probe = changed(stack, VALIDATION, _validation(**values))
            found = [d.message for d in pack.analyze(probe) if d.mandatory and d.policy == AT_UP]
            assert found and "asks ACM for the validation record" in found[0], (label, found)


def test_the_validation_record_of_a_certificate_that_is_not_the_stacks_is_refused_at_up(ha_in_aws, aws):
    """B2 at `up`: the certificate that asks for the record is not tagged as this stack's (a certificate of the account
    for the cache's name that is not the stack's asks for the same record: ACM gives one account one record per name):
    the record is refused, with that certificate's tags named."""
    from tests.standins.moto_stack import clients

    acm = clients(aws[0])("acm")
    own = registration_of(ha_in_aws, CERTIFICATE).outputs["arn"]
    acm.remove_tags_from_certificate(
        CertificateArn=own, Tags=acm.list_tags_for_certificate(CertificateArn=own)["Tags"]
    )
    with running_pack(dry_run=False, config=HA, env=aws[1]) as pack:
        found = [d.message for d in pack.analyze(registration_of(ha_in_aws, VALIDATION)) if d.mandatory]
    assert len(found) == 1 and "tagged harbor-cache:stack=None" in found[0], found


# ---------------------------------------------------------------------------------------------
# L1: the dashboard is the stack's own and shows what the program shows


@pytest.mark.parametrize(
    ("stack", "organization", "project"),
    [
        ("dev", None, "harbor-cache"),
        ("dev", "organization", "harbor-cache"),
        ("prod.eu/1", "acme", "harbor-cache"),
        ("x" * 300, "acme", "other"),
    ],
)
def test_the_packs_dashboard_name_is_the_programs(stack, organization, project):
    """The pack's copy of the derivation (policy/resource_checks.py) equals the program's (components/aws/dashboard.py)."""
    from components.aws.dashboard import dashboard_name_of

    assert resource_checks.dashboard_name_of(stack, organization, project) == dashboard_name_of(stack, organization, project)


@pytest.mark.parametrize("dry_run", [True, False], ids=["preview", "up"])
def test_the_dashboard_takes_only_the_stacks_own_name(dev, dry_run):
    """L1: PutDashboard of a taken name replaces that dashboard; another name than the stack's is refused by the
    dashboard's check, at preview and at up (the name is known at both)."""
    probe = changed(dev, DASHBOARD, lambda p: p.update(dashboardName="someone-elses-dashboard"), DASHBOARD_TYPE)
    with running_pack(dry_run=dry_run, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert [d for d in pack.analyze(registration_of(dev, DASHBOARD, DASHBOARD_TYPE)) if d.mandatory] == []
        found = [d.message for d in pack.analyze(probe) if d.mandatory]
    assert [d for d in found] and all("not the stack's own" in message for message in found), found


def test_the_dashboards_name_follows_the_organization_the_engine_hands_both():
    """The program names its dashboard with pulumi.get_organization(); the engine hands the pack the same organization
    (PULUMI_ORGANIZATION): a program run for one organization passes the pack told that one, not another."""
    stack = engine_resources(run_program(dev_config(), organization="acme"))
    dashboard = registration_of(stack, DASHBOARD, DASHBOARD_TYPE)
    for organization, passes in (("acme", True), ("other", False), (None, False)):
        with running_pack(dry_run=False, disabled=WITHOUT_AWS_LOOKUPS, organization=organization) as pack:
            found = [d for d in pack.analyze(dashboard) if d.mandatory]
        assert (found == []) is passes, (organization, found)


def _body(change):
    def apply(props):
        body = json.loads(props["dashboardBody"])
        change(body)
        props["dashboardBody"] = json.dumps(body)

    return apply


CUSTOM_WIDGET = {
    "type": "custom",
    "x": 0,
    "y": 40,
    "width": 6,
    "height": 6,
    "properties": {"endpoint": "arn:aws:lambda:eu-central-1:123456789012:function:exfiltrate", "title": "status"},
}
LOG_WIDGET = {
    "type": "log",
    "x": 0,
    "y": 40,
    "width": 6,
    "height": 6,
    "properties": {"query": "SOURCE '/aws/lambda/x' | fields @message", "region": "eu-central-1"},
}


def _metric_math(expression: str):
    def change(body):
        widget = next(w for w in body["widgets"] if w["type"] == "metric")
        widget["properties"]["metrics"].append([{"expression": expression, "label": "x", "id": "e9"}])

    return change


DASHBOARD_BODIES = {
    "custom-widget": (_body(lambda b: b["widgets"].append(CUSTOM_WIDGET)), "of type 'custom'"),
    "log-widget": (_body(lambda b: b["widgets"].append(LOG_WIDGET)), "of type 'log'"),
    "lambda-data-source": (_body(_metric_math('LAMBDA("exfiltrate", "x")')), "no function"),
    "lambda-unquoted": (_body(_metric_math("FILL(LAMBDA(x), 0)")), "no function"),
    "search": (_body(_metric_math("SEARCH(' {AWS/EC2} ', 'Average')")), "no function"),
    "metrics-insights": (_body(_metric_math("SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\")")), "no function"),
    "widget-key": (_body(lambda b: b["widgets"][0].update(endpoint="x")), "sets ['endpoint']"),
    "metric-property": (
        _body(lambda b: next(w for w in b["widgets"] if w["type"] == "metric")["properties"].update(query="x")),
        "sets ['properties.query']",
    ),
    "top-level-key": (_body(lambda b: b.update(variables=[{"type": "property"}])), "not a body of widgets only"),
    "unparseable": (lambda p: p.update(dashboardBody="{\"widgets\": ["), "not a JSON dashboard body"),
    "duplicate-keys": (lambda p: p.update(dashboardBody='{"widgets": [], "widgets": []}'), "duplicate keys"),
    "unknown-at-up": (lambda p: p.update(dashboardBody=rpc.UNKNOWN), "unknown"),
}


@pytest.mark.parametrize("label", sorted(DASHBOARD_BODIES))
def test_the_dashboard_shows_only_the_programs_widgets_at_up(dev, label):
    """L1: the body is parsed at `up` (every input known): only the program's widget types (metric, text, alarm) with
    its keys, metric math plain arithmetic; unparseable or unknown fails closed."""
    change, message = DASHBOARD_BODIES[label]
    probe = changed(dev, DASHBOARD, change, DASHBOARD_TYPE)
    with running_pack(dry_run=False, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        found = [d for d in pack.analyze(probe) if d.mandatory]
    assert [d.policy for d in found] == [DASHBOARD_POLICY], found
    assert message in found[0].message, found[0].message


def test_an_unknown_dashboard_body_at_preview_is_the_programs_made_from_its_resources(dev):
    """At a preview the program's body may be unknown (made from alarms created in the same update): it passes by its
    origin, the program's alarms; made from another resource it is refused by the stack check, and another dashboard
    than the program's is refused at all."""
    def unknown(props):
        props["dashboardBody"] = rpc.UNKNOWN

    dashboard = changed(dev, DASHBOARD, unknown, DASHBOARD_TYPE)
    assert dashboard.property_dependencies["dashboardBody"], "the program's body comes from its alarms"
    foreign = copy.deepcopy(dashboard)
    foreign.property_dependencies["dashboardBody"] = [registration_of(dev, "harbor-vm-sg").urn]
    second = copy.deepcopy(registration_of(dev, DASHBOARD, DASHBOARD_TYPE))
    second.name, second.urn = "harbor-dashboard-2", second.urn.replace("::harbor-dashboard", "::harbor-dashboard-2")
    with running_pack(dry_run=True, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert refused(pack, swapped(dev, dashboard)) == {}
        assert list(refused(pack, swapped(dev, foreign))) == [DASHBOARD_ORIGIN]
        found = refused(pack, [*dev, second])
    assert DASHBOARD_POLICY in found and "is not the program's" in found[DASHBOARD_POLICY][0], found


@pytest.mark.parametrize("config", [dev_config(), HA], ids=["dev", "ha"])
@pytest.mark.parametrize("existing_preview", [False, True], ids=["up", "preview-of-the-existing-stack"])
def test_the_dashboard_lists_the_alarms_real_arns_and_passes(config, existing_preview):
    """Review 22g T1: pulumi-aws answers every alarm's `arn` (arn:aws:cloudwatch:<region>:<account>:alarm:<its autonamed
    name>), so at `up` and at the preview of the existing stack the dashboard body is known and its alarm widget lists
    the program's alarms by those ARNs; the pack's dashboard check (and every other policy) accepts it at both."""
    stack = engine_resources(run_program(config, existing_preview=existing_preview), config=config)
    body = registration_of(stack, DASHBOARD, DASHBOARD_TYPE).inputs["dashboardBody"]
    assert body != rpc.UNKNOWN, "the existing stack's alarms have their ARNs: the body is known"
    (listed,) = [w["properties"]["alarms"] for w in json.loads(body)["widgets"] if w["type"] == "alarm"]
    # Each ARN names its alarm by the name the provider's Check filled in (autonamed) and its outputs answer.
    alarms = [r for r in stack if r.type == ALARM_TYPE]
    assert 0 < len(alarms) <= 100 and sorted(map(str, listed)) == sorted(alarm_arn(r.inputs["name"]) for r in alarms), listed
    assert all(r.outputs.get("name") == r.inputs["name"] and r.outputs.get("arn") == alarm_arn(r.inputs["name"]) for r in alarms)
    with running_pack(dry_run=existing_preview, config=config, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert [d for d in pack.analyze(registration_of(stack, DASHBOARD, DASHBOARD_TYPE)) if d.mandatory] == []
        assert refused(pack, stack) == {}
