"""Issue 13 step 3 under Pulumi's mocks: several Harbor nodes behind an Application Load Balancer.

`replicas: 3` turns S3, RDS and ElastiCache on; the single-VM stack must register exactly what main did.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from components.aws.caa import acm_caa_records
from components.aws.load_balancer import HEALTH_CHECK_PATH, IDLE_TIMEOUT_SECONDS, TLS_POLICY
from components.aws.placement import placement_problems
from components.aws.tagging import NODE_SCRATCH_TAG
from components.aws.vm import NODE_SCRATCH_VOLUME_GB
from components.vm.files import content_hash
from components.vm.ha_node import NGINX_KEEPALIVE_PATH
from components.vm.operate_files import METRICS_PORT
from components.vm.paths import HARBOR_HTTP_PORT
from tests.aws.test_aws_field_rules import EC2_DESCRIPTION, FIELDS, TAG_TEXT, check
from tests.paths import DATA
from tests.settings.test_settings import parse, problems_of
from tests.standins.mock_values import generated_password
from tests.standins.policy_engine import changed, engine_resources, refusals, registration_of
from tests.standins.policy_engine import run_program as run_autonamed
from tests.standins.pulumi_harness import (
    FAKE_ALB_DNS_NAME,
    FAKE_ALB_ZONE_ID,
    FAKE_PUBLIC_IP,
    FAKE_SUBNET_CIDRS,
    FAKE_VPC_SUBNETS,
    dev_config,
    run_program,
)
from tests.standins.registrations import without_module_paths
from tests.standins.single_vm_golden import GOLDEN_CONFIGS, fingerprint

GOLDEN = json.loads((DATA / "single_vm_main.json").read_text())
SG = "aws:ec2/securityGroup:SecurityGroup"


def config(**overrides) -> dict:
    return {**dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}


@pytest.fixture(scope="module")
def ha():
    return run_program(config(replicas=3, databaseMultiAz=True))


def names(run, dependencies: list[str]) -> set[str]:
    by_urn = {r.urn: r.name for r in run.registrations}
    return {by_urn.get(urn, urn) for urn in dependencies}


# --- single VM: nothing changes for an existing stack ---


@pytest.mark.parametrize("label", list(GOLDEN_CONFIGS))
def test_single_vm_registers_exactly_what_main_registered(label):
    """Names, types, parents, options and every cloud resource's inputs, as main (0956546) sent them."""
    run = run_program(config(**GOLDEN_CONFIGS[label]))
    # The host-key provider's pickle names its module path, which issue 17's move changed: compared
    # by class (the old path still loads the same class, components/__init__.py LEGACY_MODULES).
    now = without_module_paths(fingerprint(run))
    golden = without_module_paths(GOLDEN[label])
    assert [(r["type"], r["name"]) for r in now] == [(r["type"], r["name"]) for r in golden]
    assert now == golden


# --- settings ---


def test_nodes_default_to_the_single_vms_zone_and_the_next_one():
    assert parse(replicas=3).availability_zones == ("eu-central-1a", "eu-central-1b")
    assert parse(replicas=2, availabilityZone="eu-central-1b").availability_zones == ("eu-central-1b", "eu-central-1a")
    assert parse().availability_zones == () and parse().subnet_ids == ()


@pytest.mark.parametrize(
    ("overrides", "key", "accepted"),
    [
        ({"replicas": 2, "availabilityZones": ["eu-central-1a"]}, "availabilityZones", "at least 2 distinct AZs"),
        ({"replicas": 2, "availabilityZones": ["eu-central-1a", "eu-central-1a"]}, "availabilityZones", "at least 2"),
        ({"replicas": 2, "availabilityZones": ["eu-central-1b", "eu-central-1c"]}, "availabilityZones", "must start with"),
        ({"replicas": 2, "availabilityZones": ["eu-central-1a", "us-east-1b"]}, "availabilityZones", "not in region"),
        ({"replicas": 2, "availabilityZones": ["eu-central-1a", "central"]}, "availabilityZones", "not an availability zone"),
        ({"replicas": 2, "availabilityZones": {"zone": "eu-central-1a"}}, "availabilityZones", "not a list of strings"),
        ({"availabilityZones": ["eu-central-1a", "eu-central-1b"]}, "availabilityZones", "need replicas > 1"),
        ({"subnetIds": ["subnet-0a1b2c3d", "subnet-0a1b2c3e"]}, "subnetIds", "need replicas > 1"),
        ({"replicas": 2, "subnetIds": ["subnet-0a1b2c3d"]}, "subnetIds", "at least 2 distinct subnets"),
        ({"replicas": 2, "subnetIds": ["subnet-0a1b2c3d", "vpc-1"]}, "subnetIds", "not a subnet id"),
        (
            {"replicas": 2, "subnetIds": ["subnet-0a1b2c3d", "subnet-0a1b2c3e"], "availabilityZones": ["eu-central-1a"]},
            "subnetIds",
            "not both",
        ),
        ({"replicas": 2, "subnetId": "subnet-0a1b2c3d"}, "subnetId", "list the nodes' subnets in subnetIds"),
        (
            {"replicas": 2, "subnetId": "subnet-0a1b2c3d", "subnetIds": ["subnet-0a1b2c3e", "subnet-0a1b2c3d"]},
            "subnetIds",
            "must start with subnetId",
        ),
    ],
)
def test_bad_placement_is_refused_naming_the_key(overrides, key, accepted):
    problems = problems_of(**overrides)
    assert any(p.startswith(f"harbor-cache:{key}:") and accepted in p for p in problems), problems


def test_subnets_that_aws_places_wrongly_stop_the_program_before_any_node():
    settings = parse(replicas=2, subnetIds=["subnet-0a1b2c3d", "subnet-0a1b2c3e"])
    assert placement_problems(settings, ["eu-central-1a", "eu-central-1b"]) == []
    (same_zone,) = placement_problems(settings, ["eu-central-1a", "eu-central-1a"])
    assert same_zone.key == "subnetIds" and "one subnet per AZ" in same_zone.message
    (moved,) = placement_problems(settings, ["eu-central-1b", "eu-central-1a"])
    assert "availabilityZone 'eu-central-1a'" in moved.message
    # Through the program: the mocks place FAKE_VPC_SUBNETS[i] in the i-th AZ, so b before a is refused.
    recorder: dict = {}
    with pytest.raises(Exception, match="node 0's data volume lives in availabilityZone"):
        run_program(config(replicas=2, subnetIds=[FAKE_VPC_SUBNETS[1], FAKE_VPC_SUBNETS[0]]), recorder=recorder)
    assert not [
        r for r in recorder["registrations"] if r.type in ("aws:ec2/instance:Instance", "aws:lb/loadBalancer:LoadBalancer")
    ]
    # Subnets in distinct AZs, the first in availabilityZone: the load balancer takes them all.
    run = run_program(config(replicas=2, subnetIds=[FAKE_VPC_SUBNETS[0], FAKE_VPC_SUBNETS[2]]))
    assert run.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"] == [FAKE_VPC_SUBNETS[0], FAKE_VPC_SUBNETS[2]]
    zones = [run.named(n).inputs["availabilityZone"] for n in ("harbor-vm-instance", "harbor-vm-1-instance")]
    assert zones == ["eu-central-1a", "eu-central-1c"]


# --- nodes ---


def test_nodes_spread_round_robin_over_two_azs_and_node_0_keeps_the_single_vms_names(ha):
    instances = {r.name: r for r in ha.of_type("aws:ec2/instance:Instance")}
    assert set(instances) == {"harbor-vm-instance", "harbor-vm-1-instance", "harbor-vm-2-instance"}
    zones = [
        instances[n].inputs["availabilityZone"] for n in ("harbor-vm-instance", "harbor-vm-1-instance", "harbor-vm-2-instance")
    ]
    assert zones == ["eu-central-1a", "eu-central-1b", "eu-central-1a"] and len(set(zones)) >= 2
    subnets = [instances[n].inputs["subnetId"] for n in ("harbor-vm-instance", "harbor-vm-1-instance", "harbor-vm-2-instance")]
    assert subnets == [FAKE_VPC_SUBNETS[0], FAKE_VPC_SUBNETS[1], FAKE_VPC_SUBNETS[0]]
    for instance in instances.values():
        # One shared group, and the stores' client group (their only way to RDS and ElastiCache).
        assert instance.inputs["vpcSecurityGroupIds"] == ["harbor-vm-sg-id", "harbor-data-client-sg-id"]
        assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
        assert instance.inputs["rootBlockDevice"]["encrypted"] is True
    # Shared parts once.
    for kind in ("aws:ec2/keyPair:KeyPair", "aws:iam/instanceProfile:InstanceProfile", "aws:dlm/lifecyclePolicy:LifecyclePolicy"):
        assert len(ha.of_type(kind)) == 1, kind
    assert {r.name for r in ha.of_type("pulumi-python:dynamic/ec2:ConsoleHostKey")} == {
        "harbor-vm-host-key",
        "harbor-vm-1-host-key",
        "harbor-vm-2-host-key",
    }
    ips = {r.name: r for r in ha.of_type("aws:ec2/eip:Eip")}
    assert set(ips) == {"harbor-vm-eip", "harbor-vm-1-eip", "harbor-vm-2-eip"}


def test_node_0_keeps_the_protected_data_volume_and_the_others_have_small_deletable_ones(ha):
    single = run_program(config(storage="s3", externalServices=True, databaseMultiAz=True))
    kept = ha.named("harbor-vm-data")
    assert kept.protect and kept.retain_on_delete
    assert kept.inputs == single.named("harbor-vm-data").inputs, "switching 1 -> N changes nothing on the data volume"
    for index in (1, 2):
        scratch = ha.named(f"harbor-vm-{index}-data")
        assert not scratch.protect and not scratch.retain_on_delete
        assert scratch.inputs["encrypted"] is True and scratch.inputs["size"] == NODE_SCRATCH_VOLUME_GB
        assert scratch.inputs["tags"][NODE_SCRATCH_TAG] == "true"
        assert "harbor-cache:snapshot" not in scratch.inputs["tags"], "no snapshots of a scratch volume"
        assert scratch.inputs["availabilityZone"] == ha.named(f"harbor-vm-{index}-instance").inputs["availabilityZone"]


def test_every_protected_resource_of_a_single_vm_survives_the_switch_unchanged(ha):
    """1 -> N: nothing protected leaves the program (Pulumi would refuse, or worse, delete it)."""
    single = run_program(config(storage="s3", externalServices=True, databaseMultiAz=True))
    ha_by_name = {(r.type, r.name): r for r in ha.registrations}
    for registration in single.registrations:
        if registration.protect:
            assert (registration.type, registration.name) in ha_by_name, registration.name
            assert ha_by_name[(registration.type, registration.name)].inputs == registration.inputs, registration.name


def test_scaling_down_deletes_nothing_protected(ha):
    two = run_program(config(replicas=2, databaseMultiAz=True))
    remaining = {(r.type, r.name) for r in two.registrations}
    removed = [r for r in ha.registrations if (r.type, r.name) not in remaining]
    assert {r.name for r in removed} >= {"harbor-vm-2-instance", "harbor-vm-2-data", "harbor-vm-2-target"}
    assert not [r.name for r in removed if r.protect or r.retain_on_delete]


# --- network: stores only from the nodes, nodes only from the load balancer ---


def test_nodes_admit_web_traffic_only_from_the_load_balancer_and_ssh_from_ssh_allowed_cidrs(ha):
    nodes, lb = ha.named("harbor-vm-sg"), ha.named("harbor-lb-sg")
    rules = nodes.inputs["ingress"]
    web = [r for r in rules if r["fromPort"] == HARBOR_HTTP_PORT]
    assert len(web) == 1 and web[0]["securityGroups"] == [f"{lb.name}-id"]
    assert not web[0].get("cidrBlocks") and not web[0].get("ipv6CidrBlocks")
    (ssh,) = [r for r in rules if r["fromPort"] == 22]
    assert ssh["cidrBlocks"] == ["172.20.5.10/32"]
    assert {r["fromPort"] for r in rules} == {HARBOR_HTTP_PORT, 22}, "no 443/80 on the nodes"
    assert "harbor-cache:allow-public-access" not in nodes.inputs["tags"]


def test_the_load_balancer_admits_allowed_cidrs_and_talks_only_to_harbors_port(ha):
    lb = ha.named("harbor-lb-sg")
    assert {(r["fromPort"], tuple(r["cidrBlocks"])) for r in lb.inputs["ingress"]} == {
        (443, ("10.20.0.0/16", "172.20.5.10/32")),
        (80, ("10.20.0.0/16", "172.20.5.10/32")),
        # Each node's Elastic IP (the harness gives node i 192.0.2.(10 + i)): its public path check.
        *((443, (f"192.0.2.{10 + index}/32",)) for index in range(3)),
    }
    (egress,) = lb.inputs["egress"]
    # Only the nodes' subnets (AZs a and b), not the whole VPC (issue 18 point 10).
    node_blocks = [FAKE_SUBNET_CIDRS[0], FAKE_SUBNET_CIDRS[1]]
    assert (egress["fromPort"], egress["toPort"], egress["cidrBlocks"]) == (HARBOR_HTTP_PORT, HARBOR_HTTP_PORT, node_blocks)


def test_every_data_store_is_encrypted_private_and_reachable_only_from_the_nodes(ha):
    node_group = "harbor-vm-sg-id"
    db = ha.one("aws:rds/instance:Instance").inputs
    assert db["storageEncrypted"] is True and db["publiclyAccessible"] is False
    redis = ha.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert redis["atRestEncryptionEnabled"] is True and redis["transitEncryptionEnabled"] is True
    block = ha.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert ha.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for group in ("harbor-data-db-sg", "harbor-data-redis-sg"):
        (rule,) = ha.named(group).inputs["ingress"]
        assert rule["securityGroups"] == [node_group] and not rule.get("cidrBlocks") and not rule.get("ipv6CidrBlocks")
    for volume in ha.of_type("aws:ebs/volume:Volume"):
        assert volume.inputs["encrypted"] is True


# --- load balancer, certificate, DNS ---


def test_each_node_reaches_the_load_balancer_from_its_own_elastic_ip_for_its_public_path_check(ha):
    """One 443 rule per node, holding that node's EIP (a rule naming the nodes' group would match only
    their private addresses), inline in the load balancer's group and depending on the EIPs themselves."""
    lb = ha.named("harbor-lb-sg")
    eips = [ha.named(name) for name in ("harbor-vm-eip", "harbor-vm-1-eip", "harbor-vm-2-eip")]
    by_node = [r for r in lb.inputs["ingress"] if "Elastic IP" in r["description"]]
    assert [(r["fromPort"], r["toPort"], r["protocol"], r["cidrBlocks"]) for r in by_node] == [
        (443, 443, "tcp", [f"192.0.2.{10 + index}/32"]) for index in range(3)
    ]
    assert {eip.name for eip in eips} <= names(ha, lb.dependencies)
    assert not [r for r in ha.registrations if r.type.startswith("aws:vpc/securityGroup")], "inline rules only"
    for index in range(3):
        install = "harbor-install" if index == 0 else f"harbor-install-{index}"
        unit = ha.named(f"{install}-file-harbor-metrics.service").inputs["stdin"]
        assert "Environment=PUBLIC_URL=https://harbor.dev.example.com\n" in unit
        assert "PUBLIC_CONNECT_HOST" not in unit, "the client's path: the name resolved, not a shortcut"


def test_the_public_path_alarms_only_when_no_node_gets_through(ha):
    alarms = {r.name.removeprefix("harbor-alarms-"): r.inputs for r in ha.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    path = alarms["public-path"]
    assert (path["metricName"], path["dimensions"], path["statistic"]) == ("PublicPathHealthy", {"Stack": "dev"}, "Maximum")
    assert (path["comparisonOperator"], path["threshold"], path["period"], path["evaluationPeriods"]) == (
        "LessThanThreshold",
        1,
        60,
        5,
    )
    assert path["treatMissingData"] == "breaching" and "load balancer" in path["alarmDescription"]
    assert not [name for name in alarms if name.endswith("public-path") and name != "public-path"], "one per stack"


def test_the_load_balancer_is_internet_facing_in_two_azs_with_long_idle_timeout(ha):
    alb = ha.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["subnets"] == [FAKE_VPC_SUBNETS[0], FAKE_VPC_SUBNETS[1]]
    assert alb["securityGroups"] == ["harbor-lb-sg-id"]
    assert alb["idleTimeout"] == IDLE_TIMEOUT_SECONDS >= 900
    assert alb["dropInvalidHeaderFields"] is True


def test_https_with_a_validated_acm_certificate_and_http_only_redirects(ha):
    certificate = ha.one("aws:acm/certificate:Certificate")
    assert certificate.inputs["domainName"] == "harbor.dev.example.com" and certificate.inputs["validationMethod"] == "DNS"
    record = ha.named("harbor-lb-certificate-validation").inputs
    assert record["type"] == "CNAME" and record["name"].endswith(".harbor.dev.example.com.")
    assert record["records"][0].endswith(".acm-validations.aws.")
    validation = ha.one("aws:acm/certificateValidation:CertificateValidation").inputs
    assert validation["validationRecordFqdns"] == [record["name"]]
    listeners = {r.inputs["port"]: r.inputs for r in ha.of_type("aws:lb/listener:Listener")}
    https, http = listeners[443], listeners[80]
    assert https["protocol"] == "HTTPS" and https["sslPolicy"] == TLS_POLICY
    assert https["certificateArn"] == validation["certificateArn"]
    (forward,) = https["defaultActions"]
    target_group = ha.one("aws:lb/targetGroup:TargetGroup")
    assert forward["type"] == "forward" and forward["targetGroupArn"].endswith(
        f"targetgroup/{target_group.name}/943f017f100becff"
    )
    (redirect,) = http["defaultActions"]
    assert (
        redirect["type"] == "redirect" and redirect["redirect"]["protocol"] == "HTTPS" and redirect["redirect"]["port"] == "443"
    )


def test_the_target_group_checks_harbors_ping_and_holds_every_node(ha):
    group = ha.one("aws:lb/targetGroup:TargetGroup").inputs
    assert (group["port"], group["protocol"], group["targetType"]) == (HARBOR_HTTP_PORT, "HTTP", "instance")
    # Core's ping through the node's own location, 503 while its end-to-end check fails (issue 18 point 8).
    assert group["healthCheck"]["path"] == HEALTH_CHECK_PATH == "/harbor-cache/ready" and group["healthCheck"]["matcher"] == "200"
    assert group["deregistrationDelay"] > 0
    attachments = ha.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")
    assert sorted(a.inputs["targetId"] for a in attachments) == sorted(
        r.name + "-id" for r in ha.of_type("aws:ec2/instance:Instance")
    )
    assert {a.inputs["port"] for a in attachments} == {HARBOR_HTTP_PORT}


def test_the_hostname_is_an_alias_of_the_load_balancer_and_no_node_may_write_dns(ha):
    record = ha.named("harbor-dns-a").inputs
    assert record["name"] == "harbor.dev.example.com" and record["type"] == "A"
    assert record["aliases"] == [{"name": FAKE_ALB_DNS_NAME, "zoneId": FAKE_ALB_ZONE_ID, "evaluateTargetHealth": True}]
    assert "records" not in record and "ttl" not in record
    for policy in ha.of_type("aws:iam/rolePolicy:RolePolicy"):
        assert "route53:" not in policy.inputs["policy"], policy.name
    assert not [r for r in ha.registrations if r.name.endswith("-dns01")]


def test_caa_admits_amazons_ca_before_the_certificate_is_requested(ha):
    caa = ha.named("harbor-caa-caa").inputs
    assert caa["type"] == "CAA" and caa["records"] == acm_caa_records()
    assert acm_caa_records() == ['0 issue "amazon.com"', '0 issue "letsencrypt.org; validationmethods=dns-01"', '0 issuewild ";"']
    assert not [r for r in ha.registrations if r.name.endswith("-acme-account")], "no Traefik account to read"
    assert "harbor-caa-caa" in names(ha, ha.one("aws:acm/certificate:Certificate").dependencies)


# --- alarms ---


def test_every_node_has_its_ec2_alarms_and_the_load_balancer_its_own(ha):
    alarms = {r.name: r.inputs for r in ha.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for index, prefix in enumerate(("", "node1-", "node2-")):
        instance = "harbor-vm-instance-id" if index == 0 else f"harbor-vm-{index}-instance-id"
        for key, action in (("system-status", "recover"), ("instance-status", "reboot")):
            alarm = alarms[f"harbor-alarms-{prefix}{key}"]
            assert alarm["dimensions"] == {"InstanceId": instance}
            assert alarm["alarmActions"][0] == f"arn:aws:automate:eu-central-1:ec2:{action}"
    unhealthy = alarms["harbor-alarms-unhealthy-node"]
    assert (unhealthy["namespace"], unhealthy["metricName"]) == ("AWS/ApplicationELB", "UnHealthyHostCount")
    assert unhealthy["dimensions"]["LoadBalancer"].startswith("app/") and unhealthy["dimensions"]["TargetGroup"].startswith(
        "targetgroup/"
    )
    assert alarms["harbor-alarms-load-balancer-5xx"]["metricName"] == "HTTPCode_ELB_5XX_Count"


def test_every_node_has_its_own_disk_and_health_alarms_on_the_series_its_reporter_sends(ha):
    """One alarm per node and metric, on that node's series (dimension Node, which the node's
    harbor-metrics.service sets); the probe's counts stay per stack (it runs on node 0 only)."""
    alarms = {r.name.removeprefix("harbor-alarms-"): r.inputs for r in ha.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    reporter = {name for name, alarm in alarms.items() if alarm["metricName"] in ("DiskUsedPercent", "HarborHealthy")}
    assert len(reporter) == 3 * 3
    for index, prefix in enumerate(("", "node1-", "node2-")):
        node = {"Stack": "dev", "Node": str(index)}
        assert alarms[f"{prefix}data-disk"]["dimensions"] == {**node, "Mount": "/data"}
        assert alarms[f"{prefix}root-disk"]["dimensions"] == {**node, "Mount": "/"}
        health = alarms[f"{prefix}harbor-unhealthy"]
        assert health["dimensions"] == node and health["treatMissingData"] == "breaching"
        assert f"on node {index} " in health["alarmDescription"]
        install = "harbor-install" if index == 0 else f"harbor-install-{index}"
        unit = ha.named(f"{install}-file-harbor-metrics.service").inputs["stdin"]
        assert f"Environment=HARBOR_CACHE_NODE={index}\n" in unit
    for probe in ("smoke-failed", "prewarm-failed"):
        assert alarms[probe]["dimensions"] == {"Stack": "dev"}


def test_each_nodes_nginx_outlasts_the_load_balancers_idle_timeout(ha):
    """AWS: the target's keep-alive longer than the ALB's idle timeout, else sporadic 502s."""

    idle = ha.one("aws:lb/loadBalancer:LoadBalancer").inputs["idleTimeout"]
    for install in ("harbor-install", "harbor-install-1", "harbor-install-2"):
        step = ha.named(f"{install}-nginx-keepalive").inputs
        assert step["create"] == f"sudo install -D -m 0644 -o root -g root /dev/stdin {NGINX_KEEPALIVE_PATH}"
        (seconds,) = re.findall(r"^keepalive_timeout (\d+)s;$", step["stdin"], re.MULTILINE)
        assert int(seconds) > idle
        assert content_hash(step["stdin"]) in ha.named(f"{install}-start").inputs["triggers"]


# --- installs: rolling, one node at a time ---


def test_installs_roll_one_node_after_the_other_and_configuration_waits_for_all(ha):
    # Sorted: the SDK sends registrations from executor threads, so their order is not the program's.
    installs = sorted(r.name for r in ha.of_type("harbor-cache:index:HarborInstall"))
    assert installs == ["harbor-install", "harbor-install-1", "harbor-install-2"]
    # Node i waits for node i-1 back in the load balancer, healthy (issue 18 point 5: its rejoin).
    assert "harbor-install-rejoin" in names(ha, ha.named("harbor-install-1-docker").dependencies)
    assert "harbor-install-1-rejoin" in names(ha, ha.named("harbor-install-2-docker").dependencies)
    assert "harbor-install-1-ready" not in names(ha, ha.named("harbor-install-docker").dependencies)
    hosts = {ha.named(f"{n}-docker").inputs["connection"]["host"] for n in installs}
    assert hosts == {FAKE_PUBLIC_IP, "192.0.2.11", "192.0.2.12"}, "each install reaches its own node"
    configured = [r for r in ha.registrations if r.parent.endswith("::harbor-config") and r.type.startswith("pulumi-python:")]
    assert configured and all("harbor-install-2-rejoin" in names(ha, r.dependencies) for r in configured)


def test_outputs_keep_the_single_vm_keys_and_name_the_nodes_and_the_load_balancer(ha):
    assert ha.outputs["url"] == "https://harbor.dev.example.com"
    assert ha.outputs["publicIp"] == FAKE_PUBLIC_IP and ha.outputs["instanceId"] == "harbor-vm-instance-id"
    assert ha.outputs["loadBalancerDnsName"] == FAKE_ALB_DNS_NAME
    assert [n["instanceId"] for n in ha.outputs["nodes"]] == [
        "harbor-vm-instance-id",
        "harbor-vm-1-instance-id",
        "harbor-vm-2-instance-id",
    ]
    assert {"sshPrivateKey", "harborAdminPassword"} <= ha.secret_outputs
    # Metrics are scraped from each node (the load balancer does not carry the metrics port).
    jobs = yaml.safe_load(ha.outputs["prometheusScrapeConfig"])["scrape_configs"]
    assert jobs[0]["static_configs"][0]["targets"] == [
        f"{ip}:{METRICS_PORT}" for ip in (FAKE_PUBLIC_IP, "192.0.2.11", "192.0.2.12")
    ]


# --- secrets, idempotence, policies ---


def test_no_plain_secret_anywhere_in_state(ha):
    secrets = [generated_password(r) for r in ha.of_type("random:index/randomPassword:RandomPassword")]
    secrets += ["-----BEGIN OPENSSH PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----"]
    carriers = []
    for registration in ha.registrations:
        for key, value in registration.inputs.items():
            text = json.dumps(value, default=str)
            if any(secret in text for secret in secrets):
                assert key in registration.secret_keys(), f"{registration.name}.{key} holds a secret in plain"
                carriers.append(f"{registration.name}.{key}")
    # The check saw the secrets where they travel: every node's harbor.yml and every SSH connection.
    for install in ("harbor-install", "harbor-install-1", "harbor-install-2"):
        assert {f"{install}-harbor-yml.stdin", f"{install}-docker.connection"} <= set(carriers)


def test_a_second_evaluation_registers_identical_inputs(ha):
    again = run_program(config(replicas=3, databaseMultiAz=True))

    def state(run) -> list[tuple[str, str, str]]:
        return sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True, default=str)) for r in run.registrations)

    assert state(again) == state(ha)


@pytest.fixture(scope="module")
def ha_as_analyzed():
    return engine_resources(run_autonamed(config(replicas=3, databaseMultiAz=True)))


def test_the_ha_stack_passes_every_policy(ha_as_analyzed):
    from tests.standins.policy_engine import WITHOUT_AWS_LOOKUPS, running_pack

    kinds = {r.type for r in ha_as_analyzed}
    assert {"aws:lb/listener:Listener", "aws:ebs/volume:Volume"} <= kinds
    # The engine hands the pack the stack's own configuration: the nodes' group is judged against its replicas.
    with running_pack(dry_run=False, config=config(replicas=3, databaseMultiAz=True), disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert pack.analyze_all(ha_as_analyzed) == []


@pytest.fixture(scope="module")
def ha_pack():
    """The pack at `up` with the HA stack's own configuration, as the engine hands it (PULUMI_CONFIG): node indices
    and the nodes' group are judged against replicas=3, not the dev stack's single VM."""
    from tests.standins.policy_engine import WITHOUT_AWS_LOOKUPS, running_pack

    with running_pack(dry_run=False, config=config(replicas=3, databaseMultiAz=True), disabled=WITHOUT_AWS_LOOKUPS) as pack:
        yield pack


def test_policies_refuse_plain_http_old_tls_open_nodes_and_unprotected_data(ha_pack, ha_as_analyzed):
    up_pack = ha_pack
    https = changed(ha_as_analyzed, "harbor-lb-https", lambda p: p.update(sslPolicy="ELBSecurityPolicy-2016-08"))
    assert "TLS 1.2+" in refusals(up_pack, https)
    unset = changed(ha_as_analyzed, "harbor-lb-https", lambda p: p.pop("sslPolicy"))
    assert "TLS 1.2+" in refusals(up_pack, unset)
    forward = registration_of(ha_as_analyzed, "harbor-lb-https").inputs["defaultActions"]
    assert "plain text" in refusals(
        up_pack, changed(ha_as_analyzed, "harbor-lb-http", lambda p: p.update(defaultActions=forward))
    )

    def admit(port: int, block: str):
        return lambda p: p["ingress"].append({"protocol": "tcp", "fromPort": port, "toPort": port, "cidrBlocks": [block]})

    nodes_open_to_the_world = changed(ha_as_analyzed, "harbor-vm-sg", admit(8080, "0.0.0.0/0"))
    assert "8080 admits address blocks" in refusals(up_pack, nodes_open_to_the_world)
    nodes_open_to_clients = changed(ha_as_analyzed, "harbor-vm-sg", admit(443, "198.51.100.0/24"))
    assert "only from its security group" in refusals(up_pack, nodes_open_to_clients)

    scratch = registration_of(ha_as_analyzed, "harbor-vm-1-data")
    assert not scratch.protect and up_pack.analyze(scratch) == []
    untagged = changed(ha_as_analyzed, "harbor-vm-1-data", lambda p: p.update(tags={"Name": "x"}))
    assert "protect=True" in refusals(up_pack, untagged)
    restored = changed(ha_as_analyzed, "harbor-vm-1-data", lambda p: p.update(snapshotId="snap-0123456789abcdef0"))
    assert "protect=True" in refusals(up_pack, restored)


def test_a_wider_placement_puts_the_load_balancer_in_every_listed_az():
    run = run_program(config(replicas=2, availabilityZones=["eu-central-1a", "eu-central-1b", "eu-central-1c"]))
    assert run.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"] == list(FAKE_VPC_SUBNETS)
    zones = sorted(r.inputs["availabilityZone"] for r in run.of_type("aws:ec2/instance:Instance"))
    assert zones == ["eu-central-1a", "eu-central-1b"]


@pytest.mark.parametrize("stack", ["prod.eu-central-1", "x" * 100])
def test_every_free_text_field_of_the_ha_stack_fits_what_aws_accepts(stack):
    """The same rules as tests/aws/test_aws_field_rules.py, for the resources only replicas > 1 registers."""
    run = run_program(config(replicas=3), stack=stack)
    for registration in run.registrations:
        for field, rule in FIELDS.get(registration.type, {}).items():
            if field in registration.inputs:
                check(registration.inputs[field], rule, f"{registration.name}.{field}")
        if registration.type == SG:
            for rule in [*registration.inputs["ingress"], *registration.inputs["egress"]]:
                check(rule.get("description", ""), EC2_DESCRIPTION, f"{registration.name} rule description")
        for key, value in (registration.inputs.get("tags") or {}).items():
            assert 1 <= len(key) <= 128 and len(value) <= 256 and TAG_TEXT.match(key) and TAG_TEXT.match(value), key


def test_public_access_is_stated_on_the_load_balancers_group_never_on_the_nodes():
    run = run_program(config(replicas=2, allowPublicAccess=True, allowedCidrs=["0.0.0.0/0"]))
    assert run.named("harbor-lb-sg").inputs["tags"]["harbor-cache:allow-public-access"] == "true"
    assert "harbor-cache:allow-public-access" not in run.named("harbor-vm-sg").inputs["tags"]


def test_the_public_ha_stack_passes_every_policy():
    from tests.standins.policy_engine import WITHOUT_AWS_LOOKUPS, running_pack

    public = config(replicas=2, allowPublicAccess=True, allowedCidrs=["0.0.0.0/0"])
    # The engine hands the pack the stack's own configuration: the load balancer's group is judged against it.
    with running_pack(dry_run=False, config=public, disabled=WITHOUT_AWS_LOOKUPS) as pack:
        assert pack.analyze_all(engine_resources(run_autonamed(public))) == []


def closure(run, name: str) -> set[str]:
    """Every resource `name` waits for, directly or through its dependencies."""
    by_name = {r.name: r for r in run.registrations}
    seen: set[str] = set()
    pending = [name]
    while pending:
        for dependency in names(run, by_name[pending.pop()].dependencies):
            if dependency not in seen and dependency in by_name:
                seen.add(dependency)
                pending.append(dependency)
    return seen


def test_a_changed_node_restarts_only_after_the_node_before_it_is_healthy_again(ha):
    """On an update the engine answers a registration only once its step ran, so a node's restart
    waits for every step it depends on, through the chain, to have run first."""
    assert "harbor-install-ready" in closure(ha, "harbor-install-1-start")
    assert "harbor-install-1-ready" in closure(ha, "harbor-install-2-start")
    assert "harbor-install-harbor-yml" in closure(ha, "harbor-install-2-harbor-yml")
    # Only the other nodes' upgrade holds come before node 0 (issue 18 point 6), none of their installs.
    others = {r for r in closure(ha, "harbor-install-start") if r.startswith(("harbor-install-1-", "harbor-install-2-"))}
    assert others and all("-upgrade-" in r for r in others)


def test_the_name_moves_to_the_load_balancer_only_once_node_0_serves_and_the_provider_follows_it(ha):
    """On a switch from one VM the alias would otherwise replace the VM's address while no node is
    installed yet: the cache would be down, and the provider would find nothing behind the name."""
    assert "harbor-install-ready" in closure(ha, "harbor-dns-a")
    assert "harbor-install-rejoin" in closure(ha, "harbor-dns-a")
    others = {r for r in closure(ha, "harbor-dns-a") if r.startswith(("harbor-install-1-", "harbor-install-2-"))}
    assert all("-upgrade-" in r for r in others), others
    for registration in ha.of_type("pulumi-python:dynamic/harbor:Project"):
        assert "harbor-dns-a" in closure(ha, registration.name), registration.name
    single = run_program(config())
    assert "harbor-dns-a" in closure(single, "harbor-install-start"), "one VM: the name comes first (DNS-01)"


def test_a_preview_of_the_ha_stack_evaluates_with_unknown_cloud_outputs():
    run = run_program(config(replicas=2), preview=True)
    assert len(run.of_type("aws:ec2/instance:Instance")) == 2 and run.one("aws:lb/loadBalancer:LoadBalancer")


def test_shared_secrets_are_made_once_identical_on_every_node_and_secret_in_state(ha):
    (shared,) = ha.of_type("harbor-cache:index:HarborSharedSecrets")
    generated = [r for r in ha.registrations if r.parent == shared.urn and r.type == "random:index/randomPassword:RandomPassword"]
    values = [generated_password(r) for r in generated]
    values.append("-----BEGIN RSA PRIVATE KEY-----\nharbor-shared-token-key\n")
    assert len(values) >= 8, [r.name for r in generated]
    installs = ("harbor-install", "harbor-install-1", "harbor-install-2")
    carried_by_node = []
    for install in installs:
        steps = [r for r in ha.registrations if r.name.startswith(f"{install}-") and r.type == "command:remote:Command"]
        carried = set()
        for step in steps:
            stdin = step.inputs.get("stdin") or ""
            found = {value for value in values if value in stdin}
            if found:
                assert "stdin" in step.secret_keys(), f"{step.name} carries shared secrets in plain"
                carried |= found
        carried_by_node.append(carried)
    assert carried_by_node[0] == carried_by_node[1] == carried_by_node[2] == set(values), "every node holds every shared value"
    # The files and the override laid from them are the same bytes on every node.
    for step in ("compose-override", "harbor-key", "signing-key", "signing-cert"):
        texts = {ha.named(f"{install}-{step}").inputs["stdin"] for install in installs}
        assert len(texts) == 1, step
    # One admin password: the provider's login is every node's.
    assert ha.outputs["harborAdminPassword"] == generated_password(ha.named("harbor-shared-admin-password"))


def test_every_node_gets_a_secret_key_of_the_16_characters_harbor_reads(ha):
    # prepare v2.15.2 utils/cert.py get_secret_key loads /data/secret/keys/secretkey and refuses any
    # length but 16 ("secret key's length has to be 16 chars"): the value laid on each node must fit.
    from components.vm.shared_secrets import SECRET_KEY_LENGTH

    assert SECRET_KEY_LENGTH == 16
    for install in ("harbor-install", "harbor-install-1", "harbor-install-2"):
        key = ha.named(f"{install}-harbor-key").inputs["stdin"]
        assert re.fullmatch(r"[A-Za-z0-9]{16}", key), (install, len(key))


def test_the_password_mock_gives_what_pulumi_random_would_for_the_asked_length_and_classes(ha):
    for registration in ha.of_type("random:index/randomPassword:RandomPassword"):
        value, inputs = generated_password(registration), registration.inputs
        assert len(value) == int(inputs["length"]), registration.name
        if inputs.get("special") is False:
            assert value.isalnum(), registration.name
        for key, pool in (("minUpper", str.isupper), ("minLower", str.islower), ("minNumeric", str.isdigit)):
            assert sum(map(pool, value)) >= int(inputs.get(key, 0)), (registration.name, key)
