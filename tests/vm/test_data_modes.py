"""Issue 13 steps 1 and 2: `storage: s3` and `externalServices: true`, under Harbor's own prepare and under mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.aws.storage import BUCKET_ACTIONS, OBJECT_ACTIONS
from components.vm.harbor_yml import DataEndpoints, harbor_yml, render_harbor_yml
from components.vm.secret_values import HarborSecrets
from tests.conftest import unavailable
from tests.paths import TOOLS
from tests.settings.test_settings import parse, problems_of
from tests.standins.mock_values import generated_password
from tests.standins.pulumi_harness import FAKE_VPC_SUBNETS, dev_config, run_program

PREPARE = TOOLS / "harbor-prepare"
# The Python that runs Harbor's prepare: this one (the venv has click, jinja2, packaging, pyyaml).
PYTHON = os.environ.get("HARBOR_PREPARE_PYTHON", sys.executable)
SECRETS = HarborSecrets(
    admin_password="Admin-Passw0rd",
    database_password="LocalDbPassw0rd",
    external_database_password="RdsPassw0rdLettersDigits",
    redis_password="RedisAuthT0kenLettersDigits",
)
ENDPOINTS = DataEndpoints(
    bucket="harbor-cache-20261128000000000000000001",
    database_host="harbor-cache-1.c1a2b3c4d5e6.eu-central-1.rds.amazonaws.com",
    redis_host="master.harbor-data-redis.abc123.euc1.cache.amazonaws.com",
)
MODES = {
    "ebs": {},
    "s3": {"storage": "s3"},
    "external": {"externalServices": True},
    "s3-external": {"storage": "s3", "externalServices": True},
}


def rendered(**overrides) -> dict:
    return yaml.safe_load(render_harbor_yml(parse(**overrides), SECRETS, ENDPOINTS))


def test_default_mode_renders_harbor_yml_exactly_as_before():
    settings = parse()
    text = render_harbor_yml(settings, SECRETS, ENDPOINTS)
    assert text == yaml.safe_dump(harbor_yml(settings, SECRETS), sort_keys=False, default_flow_style=False, width=1000)
    document = yaml.safe_load(text)
    assert not {"storage_service", "external_database", "external_redis"} & set(document)
    assert document["database"]["password"] == "LocalDbPassw0rd"


def test_s3_mode_points_the_registry_at_the_bucket_without_keys_and_streams_blobs_by_default():
    storage = rendered(storage="s3")["storage_service"]
    expected = {
        "region": "eu-central-1",
        "regionendpoint": "https://s3.eu-central-1.amazonaws.com",
        "bucket": ENDPOINTS.bucket,
        "encrypt": True,
        "secure": True,
        "v4auth": True,
    }
    assert storage["s3"] == expected
    assert not {"accesskey", "secretkey"} & set(storage["s3"]), "the instance role, never keys"
    assert storage["redirect"] == {"disable": True}
    assert rendered(storage="s3", storageRedirect=True)["storage_service"]["redirect"] == {"disable": False}


def test_external_mode_replaces_the_local_database_block_and_uses_tls_to_redis():
    document = rendered(externalServices=True)
    assert "database" not in document
    harbor_db = document["external_database"]["harbor"]
    assert harbor_db["host"] == ENDPOINTS.database_host and harbor_db["port"] == 5432
    assert harbor_db["password"] == SECRETS.external_database_password and harbor_db["ssl_mode"] == "require"
    redis = document["external_redis"]
    assert redis["host"] == f"{ENDPOINTS.redis_host}:6379" and redis["password"] == SECRETS.redis_password
    assert redis["tlsOptions"]["enable"] is True
    assert SECRETS.database_password not in render_harbor_yml(parse(externalServices=True), SECRETS, ENDPOINTS)


@pytest.mark.parametrize(
    ("overrides", "key", "accepted"),
    [
        ({"storage": "efs"}, "storage", "ebs, s3"),
        ({"storageRedirect": True}, "storageRedirect", "needs storage: s3"),
        ({"externalServices": "maybe"}, "externalServices", "true or false"),
        ({"databaseInstanceClass": "t3.large"}, "databaseInstanceClass", "db.t4g.small"),
        ({"redisNodeType": "db.t4g.small"}, "redisNodeType", "cache.t4g.micro"),
        ({"databaseBackupRetentionDays": 0}, "databaseBackupRetentionDays", "1..35"),
        ({"replicas": 0}, "replicas", "1..6"),
        ({"replicas": 7}, "replicas", "1..6"),
        ({"replicas": 3, "storage": "efs"}, "storage", "ebs, s3"),
    ],
)
def test_bad_mode_settings_are_refused_naming_key_and_accepted_values(overrides, key, accepted):
    problems = problems_of(**overrides)
    assert any(p.startswith(f"harbor-cache:{key}:") and accepted in p for p in problems), problems


def test_replicas_turn_s3_and_the_external_stores_on():
    assert (parse().replicas, parse().high_availability) == (1, False)
    several = parse(replicas=3)
    assert (several.high_availability, several.storage, several.external_services) == (True, "s3", True)
    assert parse(replicas=2, storage="s3", externalServices=True).high_availability
    # The CLI hands the program every Pulumi.yaml default as if the stack had set it
    # (pkg/workspace/config.go, mergeConfig): replicas alone must still turn the stores on.
    defaulted = parse(replicas=3, storage="ebs", externalServices=False)
    assert (defaulted.storage, defaulted.external_services) == ("s3", True)


def run_prepare(document: dict, tmp_path: Path) -> Path:
    if not PREPARE.exists():
        unavailable(f"{PREPARE} (Harbor's prepare runner) is missing")
    if os.geteuid() != 0:
        unavailable("harbor-prepare needs root (unshare --mount)")
    source = tmp_path / "harbor.yml"
    source.write_text(yaml.safe_dump(document, sort_keys=False))
    out = tmp_path / "out"
    result = subprocess.run(
        [str(PREPARE), str(source), str(out)], env={**os.environ, "PYTHON": PYTHON}, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize("mode", list(MODES))
def test_harbors_prepare_accepts_each_mode_and_leaves_out_what_is_external(mode, tmp_path):
    overrides = MODES[mode]
    out = run_prepare(rendered(**overrides), tmp_path)
    services = yaml.safe_load((out / "compose/docker-compose.yml").read_text())["services"]
    registry = yaml.safe_load((out / "config/registry/config.yml").read_text())
    external = overrides.get("externalServices", False)
    assert ("postgresql" in services) is not external, sorted(services)
    assert ("redis" in services) is not external, sorted(services)
    if overrides.get("storage") == "s3":
        assert registry["storage"]["s3"] == {
            "region": "eu-central-1",
            "regionendpoint": "https://s3.eu-central-1.amazonaws.com",
            "bucket": ENDPOINTS.bucket,
            "encrypt": True,
            "secure": True,
            "v4auth": True,
        }
        assert "filesystem" not in registry["storage"]
        assert registry["storage"]["redirect"] == {"disable": True}
        # Harbor's compose template mounts {data_volume}/registry at /storage in every mode
        # (docker-compose.yml.jinja, registry and registryctl); with s3 the registry's config no
        # longer has a filesystem driver, so nothing is written there.
    else:
        assert registry["storage"]["filesystem"] == {"rootdirectory": "/storage"}
    core_env = (out / "config/core/env").read_text()
    if external:
        assert f"POSTGRESQL_HOST={ENDPOINTS.database_host}" in core_env
        assert "POSTGRESQL_SSLMODE=require" in core_env
        assert registry["redis"]["addr"] == f"{ENDPOINTS.redis_host}:6379" and registry["redis"]["enableTLS"] is True
        assert f"rediss://:{SECRETS.redis_password}@{ENDPOINTS.redis_host}:6379" in core_env
    else:
        assert "POSTGRESQL_HOST=postgresql" in core_env


# --- under mocks ---


def config(**overrides) -> dict:
    return {**dev_config(), **{f"harbor-cache:{key}": value for key, value in overrides.items()}}


@pytest.fixture(scope="module")
def ha_run():
    return run_program(config(storage="s3", externalServices=True, databaseMultiAz=True))


def test_one_vm_on_rds_lays_the_secret_key_from_state_that_ha_nodes_would_share(ha_run):
    """Harbor encrypts upstream credentials and the OIDC secret in the database with its secret key;
    with the database on RDS that key comes from HarborSharedSecrets, so a later switch to HA finds it."""
    assert ha_run.named("harbor-shared").type == "harbor-cache:index:HarborSharedSecrets"
    key_step = ha_run.named("harbor-install-harbor-key")
    assert "stdin" in key_step.secret_keys()
    local = run_program(config(storage="s3"))
    assert not [r for r in local.registrations if r.name in ("harbor-shared", "harbor-install-harbor-key")]


def test_bucket_is_private_encrypted_tls_only_and_expires_incomplete_uploads(ha_run):
    bucket = ha_run.one("aws:s3/bucket:Bucket")
    assert not bucket.inputs.get("forceDestroy"), "a destroy must not empty the bucket silently"
    block = ha_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    sse = ha_run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    policy = json.loads(ha_run.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = ha_run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rules[0]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7 and rules[0]["status"] == "Enabled"
    assert not ha_run.of_type("aws:s3/bucketVersioning:BucketVersioning"), "versioning stays off (docs/scale.md)"


def test_instance_role_may_use_only_this_bucket_with_distributions_actions(ha_run):
    bucket = ha_run.one("aws:s3/bucket:Bucket")
    arn = f"arn:aws:s3:::{bucket.inputs['bucketPrefix']}20261128000000000000000001"
    policy = ha_run.named("harbor-storage-registry-access")
    assert policy.inputs["role"] == "harbor-vm-role"
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert {(tuple(s["Action"]), s["Resource"]) for s in statements} == {(BUCKET_ACTIONS, arn), (OBJECT_ACTIONS, f"{arn}/*")}


def test_database_and_redis_are_encrypted_private_and_reachable_only_from_the_vm(ha_run):
    vm_sg = ha_run.named("harbor-vm-sg")
    db = ha_run.one("aws:rds/instance:Instance")
    assert db.inputs["storageEncrypted"] is True and db.inputs["publiclyAccessible"] is False
    assert db.inputs["multiAz"] is True and db.inputs["backupRetentionPeriod"] == 7
    assert db.inputs["deletionProtection"] is True and db.protect
    assert "password" in db.secret_keys()
    redis = ha_run.one("aws:elasticache/replicationGroup:ReplicationGroup")
    assert redis.inputs["atRestEncryptionEnabled"] is True and redis.inputs["transitEncryptionEnabled"] is True
    assert redis.inputs["automaticFailoverEnabled"] is True and redis.inputs["numCacheClusters"] == 2
    assert "authToken" in redis.secret_keys()
    for store, sg_name, port in ((db, "harbor-data-db-sg", 5432), (redis, "harbor-data-redis-sg", 6379)):
        group = ha_run.named(sg_name)
        (rule,) = group.inputs["ingress"]
        assert (rule["fromPort"], rule["toPort"], rule["securityGroups"]) == (port, port, [f"{vm_sg.name}-id"])
        assert not rule.get("cidrBlocks") and not rule.get("ipv6CidrBlocks")
        assert group.inputs["egress"] == []
        ids = store.inputs.get("vpcSecurityGroupIds") or store.inputs.get("securityGroupIds")
        assert ids == [f"{sg_name}-id"]
    for kind in ("aws:rds/subnetGroup:SubnetGroup", "aws:elasticache/subnetGroup:SubnetGroup"):
        assert ha_run.one(kind).inputs["subnetIds"] == sorted(FAKE_VPC_SUBNETS)
    # The VM reaches the stores, and no other database of the VPC, through their client group: its egress names the
    # stores' two groups, no address block; the VM's own group lets neither port out (issue 22: it sent 5432 and 6379
    # to the whole VPC). The instance is in both groups.
    assert not [r for r in vm_sg.inputs["egress"] if r["fromPort"] in (5432, 6379)]
    client = ha_run.named("harbor-data-client-sg")
    assert client.inputs["ingress"] == []
    assert [(r["fromPort"], r["toPort"], r["securityGroups"], r.get("cidrBlocks")) for r in client.inputs["egress"]] == [
        (5432, 5432, ["harbor-data-db-sg-id"], None),
        (6379, 6379, ["harbor-data-redis-sg-id"], None),
    ]
    instance = ha_run.one("aws:ec2/instance:Instance")
    assert instance.inputs["vpcSecurityGroupIds"] == [f"{vm_sg.name}-id", f"{client.name}-id"]


def test_passwords_are_secret_in_state_and_reach_harbor_yml_only_in_its_secret_copy(ha_run):
    passwords = {r.name: r for r in ha_run.of_type("random:index/randomPassword:RandomPassword")}
    assert {"harbor-data-db-password", "harbor-data-redis-password"} <= set(passwords)
    db_password = generated_password(passwords["harbor-data-db-password"])
    redis_password = generated_password(passwords["harbor-data-redis-password"])
    harbor_yml = ha_run.named("harbor-install-harbor-yml")
    assert "stdin" in harbor_yml.secret_keys()
    document = yaml.safe_load(harbor_yml.inputs["stdin"])
    assert document["external_database"]["harbor"]["password"] == db_password
    assert document["external_redis"]["password"] == redis_password
    assert document["storage_service"]["s3"]["bucket"].startswith("harbor-cache-")
    for registration in ha_run.registrations:
        if registration.name == "harbor-install-harbor-yml":
            continue
        for key, value in registration.inputs.items():
            text = json.dumps(value, default=str)
            if db_password in text or redis_password in text:
                assert key in registration.secret_keys(), f"{registration.name}.{key} carries a password in plain"


def test_install_waits_for_the_stores_and_the_role_policy(ha_run):
    urns = {r.urn: r.name for r in ha_run.registrations}
    first = {urns.get(u, u) for u in ha_run.named("harbor-install-docker").dependencies}
    assert {"harbor-storage-registry-access", "harbor-data-db", "harbor-data-redis"} <= first


def test_a_second_evaluation_registers_the_same_inputs(ha_run):
    again = run_program(config(storage="s3", externalServices=True, databaseMultiAz=True))

    # Registration order follows the resolution of outputs; the set of (resource, inputs) is what counts.
    def state(run) -> list[tuple[str, str, str]]:
        return sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True, default=str)) for r in run.registrations)

    assert state(again) == state(ha_run)


def test_default_mode_registers_no_store_and_no_extra_egress():
    run = run_program(dev_config())
    kinds = {r.type for r in run.registrations}
    assert not {t for t in kinds if t.startswith(("aws:s3/", "aws:rds/", "aws:elasticache/"))}
    assert not run.of_type("aws:iam/rolePolicy:RolePolicy") or all(
        "s3:" not in r.inputs["policy"] for r in run.of_type("aws:iam/rolePolicy:RolePolicy")
    )
    assert {r["fromPort"] for r in run.named("harbor-vm-sg").inputs["egress"]} == {80, 443}
    # No store, no client group: the instance is in the VM's group alone.
    assert run.one("aws:ec2/instance:Instance").inputs["vpcSecurityGroupIds"] == ["harbor-vm-sg-id"]
