"""storage: s3 with the registry's own code (issue 18): the s3-aws driver of distribution and aws-sdk-go
1.15.11 (tests/standins/registry_go) reads the config.yml that Harbor's prepare makes from our harbor.yml,
gets the instance role's credentials the way the VM gives them, and writes and reads a blob in an S3
that checks every signature.

Namespaces (as tests/aws/test_imds_reach.py lays them out): `nitro` holds IMDS (tests/standins/imds_stand_in.py:
tokens required, 401 without one, the token's TTL = hop limit) and the S3 endpoint (moto's server
with authentication on: INITIAL_NO_AUTH_ACTION_COUNT lets only the set-up calls through, after that
moto checks the SigV4 signature, the session token and the role's policy of every request); `host`
is the VM, with Harbor's bridge on the fixed subnet, Docker's masquerade and DOCKER-USER chain, and
the units' own ExecStart= lines run by /bin/sh with real iptables; `reg` is the registry container
at its fixed address, `other` any other container on Harbor's network.

The control run is today's production: no relay, hop limit 2, the guard letting the registry
through to IMDS. It fails as the VM does, NoCredentialProviders.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from pathlib import Path

import pytest

from components.vm.harbor_yml import render_harbor_yml
from components.vm.imds_guard import (
    HARBOR_DYNAMIC_RANGE,
    HARBOR_GATEWAY,
    HARBOR_SUBNET,
    IMDS_ADDRESS,
    IMDS_CLIENT_BLOCK,
    IMDS_CLIENTS,
    IMDS_RELAY_PORT,
    imds_relay_rule,
    render_imds_guard_unit,
)
from components.vm.imds_relay import IMDS_RELAY_SCRIPT, imds_relay_environment
from tests.aws.test_imds_reach import STAND_IN, docker_user_chain_as_dockerd_sets_it_up
from tests.paths import FILES
from tests.settings.test_settings import parse
from tests.standins.netns import link, namespaces, require_netns
from tests.standins.registry_harness import REGISTRY, REGISTRYCTL, harness_binary, harness_environment, parse_result
from tests.vm.test_data_modes import ENDPOINTS, SECRETS
from tests.vm.test_imds_guard import shell_of, unit_values
from tests.vm.test_real_compose import prepare

RELAY = FILES / IMDS_RELAY_SCRIPT
IMDS = IMDS_ADDRESS
OUTSIDE = "10.254.0.1"  # nitro's end of the host's uplink: IMDS's network and "the internet"
S3_PORT = 4566
S3_ENDPOINT = f"http://{OUTSIDE}:{S3_PORT}"
S3 = parse(storage="s3")
# What the set-up may do before moto starts checking: create the bucket, the role, its policy, and
# assume it (the session IMDS then hands out, like the instance profile's).
MOTO_SETUP_CALLS = 4
MOTO_SETUP = """
import json, sys, boto3
endpoint, bucket, region = sys.argv[1:4]
session = boto3.session.Session(aws_access_key_id="AKIASETUPSETUPSETUP0", aws_secret_access_key="setup", region_name=region)
session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
iam = session.client("iam", endpoint_url=endpoint)
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
         "Action": "sts:AssumeRole"}]}
role = iam.create_role(RoleName="harbor-vm-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
# The bucket policy of components/harbor_storage.py, in short: this bucket and its objects only.
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
          "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
iam.put_role_policy(RoleName="harbor-vm-role", PolicyName="bucket", PolicyDocument=json.dumps(policy))
sts = session.client("sts", endpoint_url=endpoint)
credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="i-0123456789abcdef0")["Credentials"]
print(json.dumps({"AccessKeyId": credentials["AccessKeyId"], "SecretAccessKey": credentials["SecretAccessKey"],
                  "Token": credentials["SessionToken"], "Expiration": credentials["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}))
"""
MOTO_LIST = """
import json, sys, boto3
endpoint, bucket, region, credentials = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=credentials["AccessKeyId"],
                  aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["Token"])
print(json.dumps([item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]))
"""


@pytest.fixture(scope="module")
def harnesses() -> dict[str, Path]:
    """The registry's build and registryctl's (see tests/standins/registry_go/main.go)."""
    return {"registry": harness_binary(REGISTRY), "registryctl": harness_binary(REGISTRYCTL)}


@pytest.fixture(scope="module")
def registry_config(tmp_path_factory) -> Path:
    """The registry's config.yml as Harbor's prepare writes it from our harbor.yml in s3 mode."""
    prepared = prepare(render_harbor_yml(S3, SECRETS, ENDPOINTS), tmp_path_factory.mktemp("prepare-s3"))
    return prepared / "config" / "registry" / "config.yml"


def wait_for(namespace, url: str, log: Path, expect: str = "") -> None:
    deadline = time.monotonic() + 20
    while True:
        result = namespace.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", url, check=False)
        if result.returncode == 0 and (not expect or result.stdout == expect):
            return
        assert time.monotonic() < deadline, f"{url} did not come up:\n{log.read_text() if log.exists() else ''}"
        time.sleep(0.2)


def run_guard_unit(host, fixed: bool) -> None:
    """The guard unit's ExecStart= lines, in order, as systemd hands them to /bin/sh. Without the fix:
    the unit as it was before the relay, its DOCKER-USER guard with the exception for the registry's
    block (`! -s`), which the guard no longer has (the nat rule takes the registry's connections
    before FORWARD), added back here as an accept above the guard."""
    lines = unit_values(render_imds_guard_unit(S3), "Service", "ExecStart")
    assert len(lines) == 5 and " -t nat " in lines[2] and all(" INPUT " in line for line in lines[3:])
    for line in lines if fixed else lines[:2]:
        result = host.run("/bin/sh", "-c", shell_of(line), check=False)
        assert result.returncode == 0, result.stderr
    exception = ["DOCKER-USER", "-s", IMDS_CLIENT_BLOCK, "-d", f"{IMDS}/32", "-j", "ACCEPT"]
    if not fixed and host.run("iptables", "-w", "-C", *exception, check=False).returncode:
        host.run("iptables", "-w", "-I", *exception)


def curl(namespace, *arguments: str) -> tuple[str, str]:
    """(HTTP status or "000", body); stderr goes into the body when curl fails."""
    result = namespace.run("curl", "-s", "-S", "--max-time", "3", "-w", "\n%{http_code}", *arguments, check=False)
    body, _, status = result.stdout.rpartition("\n")
    return status, body + result.stderr


def run_registry(harnesses: dict[str, Path], config: Path, tmp_path: Path, fixed: bool) -> dict:
    subnet = ipaddress.ip_network(HARBOR_SUBNET)
    other_address = str(next(ipaddress.ip_network(HARBOR_DYNAMIC_RANGE).hosts()))
    containers = {"reg": IMDS_CLIENTS["registry"], "ctl": IMDS_CLIENTS["registryctl"], "other": other_address}
    with namespaces("nitro", "host", *containers) as ns:
        nitro, host, reg = ns["nitro"], ns["host"], ns["reg"]
        link(host, "10.254.0.2/24", nitro, f"{OUTSIDE}/24")
        nitro.run("ip", "addr", "add", f"{IMDS}/32", "dev", "lo")
        host.run("ip", "route", "add", "default", "via", OUTSIDE)

        # S3, with moto checking signatures once the set-up calls are spent.
        moto_log = tmp_path / "moto.log"
        nitro.start(sys.executable, "-m", "moto.server", "-H", OUTSIDE, "-p", str(S3_PORT), log=moto_log,
                    env={"PATH": "/usr/bin:/bin", "INITIAL_NO_AUTH_ACTION_COUNT": str(MOTO_SETUP_CALLS)})  # fmt: skip
        wait_for(nitro, f"{S3_ENDPOINT}/moto-api/", moto_log)
        setup = nitro.run(sys.executable, "-c", MOTO_SETUP, S3_ENDPOINT, ENDPOINTS.bucket, S3.region, check=False, timeout=60)
        assert setup.returncode == 0, setup.stderr
        credentials_file = tmp_path / "role-credentials.json"
        credentials_file.write_text(setup.stdout)
        credentials = json.loads(setup.stdout)

        # IMDS, tokens required; the hop limit the program sets (1), or the old s3 value (2).
        imds_log = tmp_path / "imds.log"
        nitro.start(sys.executable, str(STAND_IN), IMDS, "1" if fixed else "2", str(credentials_file), log=imds_log)
        wait_for(nitro, f"http://{IMDS}/", imds_log)

        # A host firewall of default deny, as ufw's (its ufw-before-input accepts established
        # connections, the relay's to IMDS among them): the guard's INPUT accept keeps the relay reachable.
        host.run("iptables", "-w", "-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
        host.run("iptables", "-w", "-P", "INPUT", "DROP")
        # The host as the units leave it: the guard before dockerd, dockerd's own chain set-up, the relay.
        run_guard_unit(host, fixed)
        docker_user_chain_as_dockerd_sets_it_up(host)
        # harbor.service's restart re-runs the guard (PartOf=): nothing may be added twice.
        run_guard_unit(host, fixed)
        relay_log = tmp_path / "relay.log"
        if fixed:
            # Started before the bridge exists (as before docker.service): IP_FREEBIND.
            host.start(sys.executable, str(RELAY), log=relay_log,
                       env={"PATH": "/usr/bin:/bin", **imds_relay_environment()})  # fmt: skip
        bridge = "harbor0"
        host.run("ip", "link", "add", bridge, "type", "bridge")
        host.run("ip", "addr", "add", f"{HARBOR_GATEWAY}/{subnet.prefixlen}", "dev", bridge)
        host.run("ip", "link", "set", bridge, "up")
        for role, address in containers.items():
            host_end, _ = link(host, "", ns[role], f"{address}/{subnet.prefixlen}")
            host.run("ip", "link", "set", host_end, "master", bridge)
            ns[role].run("ip", "route", "add", "default", "via", HARBOR_GATEWAY)
        host.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        host.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", str(subnet), "!", "-o", bridge, "-j", "MASQUERADE")
        if fixed:
            wait_for(reg, f"http://{IMDS}/latest/meta-data/iam/security-credentials/", relay_log, expect="200")

        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        # Only the endpoint is pointed at the local S3 (distribution's env override); region, bucket,
        # encryption and signing come from prepare's config.yml.
        env = harness_environment(home, REGISTRY_STORAGE_S3_REGIONENDPOINT=S3_ENDPOINT)
        result: dict = {}
        for container, program in (("reg", "registry"), ("ctl", "registryctl")):
            completed = ns[container].run(str(harnesses[program]), "s3", str(config), env=env, check=False, timeout=180)
            result[program] = parse_result(completed)
        # What the two programs asked the relay, before the probes below add to the log.
        result["relay_log"] = relay_log.read_text() if relay_log.exists() else ""
        listing = nitro.run(sys.executable, "-c", MOTO_LIST, S3_ENDPOINT, ENDPOINTS.bucket, S3.region, json.dumps(credentials),
                            check=False, timeout=60)  # fmt: skip
        assert listing.returncode == 0, listing.stderr
        result["bucket"] = json.loads(listing.stdout)
        result["credentials"] = credentials
        base = f"http://{IMDS}/latest"
        result["reg"] = {
            "token": curl(reg, "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", f"{base}/api/token"),
            "user-data": curl(reg, f"{base}/user-data"),
            "other-path": curl(reg, f"{base}/meta-data/instance-id"),
            "role-list": curl(reg, f"{base}/meta-data/iam/security-credentials/"),
        }
        relay_direct = f"http://{HARBOR_GATEWAY}:{IMDS_RELAY_PORT}/latest/meta-data/iam/security-credentials/"
        result["reg"]["relay-direct"] = curl(reg, relay_direct)
        result["other"] = {
            "imds": curl(ns["other"], f"{base}/meta-data/iam/security-credentials/"),
            "relay": curl(ns["other"], relay_direct),
        }
        result["host"] = {"relay": curl(host, relay_direct)}
        result["forward"] = host.run("iptables", "-w", "-S", "DOCKER-USER").stdout.splitlines()
        result["prerouting"] = host.run("iptables", "-w", "-t", "nat", "-S", "PREROUTING").stdout.splitlines()
        result["input"] = host.run("iptables", "-w", "-S", "INPUT").stdout.splitlines()
        if fixed:
            # Were the nat rule ever gone, the registry's connection would be forwarded to IMDS: the
            # DOCKER-USER guard refuses it as everyone's (the old guard's exception let it through).
            host.run("iptables", "-w", "-t", "nat", "-D", "PREROUTING", *imds_relay_rule())
            result["reg"]["imds-without-nat"] = curl(reg, f"{base}/meta-data/iam/security-credentials/")
        return result


@pytest.fixture(autouse=True)
def _requirements():
    require_netns("curl")


@pytest.fixture(scope="module")
def fixed(harnesses, registry_config, tmp_path_factory) -> dict:
    require_netns("curl")
    return run_registry(harnesses, registry_config, tmp_path_factory.mktemp("fixed"), fixed=True)


def test_the_registry_stores_and_reads_a_blob_with_the_relayed_role_credentials(fixed):
    registry = fixed["registry"]
    assert registry["ok"] and registry["stage"] == "read", fixed
    # The blob is in the bucket, written with the session IMDS handed out (moto checked its signature).
    assert registry["key"].lstrip("/") in fixed["bucket"]
    # The registry (aws-sdk-go 1.15.11) asked for the two paths EC2RoleProvider uses, no token.
    log = fixed["relay_log"]
    assert f'{IMDS_CLIENTS["registry"]} "GET /latest/meta-data/iam/security-credentials/ HTTP' in log
    assert f'{IMDS_CLIENTS["registry"]} "GET /latest/meta-data/iam/security-credentials/harbor-vm-role HTTP' in log
    assert f'{IMDS_CLIENTS["registry"]} "PUT' not in log


def test_registryctl_falls_back_from_its_token_request_and_stores_too(fixed):
    """registryctl's SDK (v1.55.8) asks for a token first; the relay's 403 sends it to plain GETs."""
    registryctl = fixed["registryctl"]
    assert registryctl["ok"] and registryctl["stage"] == "read", fixed
    assert registryctl["key"].lstrip("/") in fixed["bucket"]
    log = fixed["relay_log"]
    assert f'{IMDS_CLIENTS["registryctl"]} "PUT /latest/api/token HTTP/1.1" 403' in log
    assert f'{IMDS_CLIENTS["registryctl"]} "GET /latest/meta-data/iam/security-credentials/harbor-vm-role HTTP' in log


def test_the_relay_serves_the_role_and_nothing_else(fixed):
    reg = fixed["reg"]
    assert reg["role-list"] == ("200", "harbor-vm-role")
    assert reg["token"][0] == "403"
    # No user data (it may hold secrets), no other metadata.
    assert reg["user-data"][0] == "404" and reg["other-path"][0] == "404"
    # Any other container: refused by the guard on the way to IMDS, and reset by the host's INPUT
    # rules when it dials the relay's port directly (the relay never sees it, cannot be tied up by it):
    # curl's 7, "Failed to connect"; the relay itself would accept and close (52, empty reply).
    assert fixed["other"]["imds"][0] == "000" and "Failed to connect" in fixed["other"]["imds"][1]
    assert fixed["other"]["relay"][0] == "000" and "Failed to connect" in fixed["other"]["relay"][1], fixed["other"]
    # The registry too, except by way of the IMDS address (the nat rule's DNAT is what INPUT accepts).
    assert fixed["reg"]["relay-direct"][0] == "000" and "Failed to connect" in fixed["reg"]["relay-direct"][1]
    # The host itself (and Traefik on the host network) asks IMDS directly, never the relay.
    assert fixed["host"]["relay"][0] == "000" and "Failed to connect" in fixed["host"]["relay"][1]


def test_the_guard_refuses_the_registry_at_imds_when_the_nat_rule_is_gone(fixed):
    status, error = fixed["reg"]["imds-without-nat"]
    assert status == "000" and "Failed to connect" in error, fixed["reg"]["imds-without-nat"]


def test_each_rule_is_there_once_and_first(fixed):
    """After the guard ran before dockerd and again at harbor's restart: the DOCKER-USER guard before
    the RETURN older dockerd versions append, the nat rule at the top of PREROUTING."""
    guards = [rule for rule in fixed["forward"] if IMDS_ADDRESS in rule]
    assert len(guards) == 1 and fixed["forward"].index(guards[0]) < fixed["forward"].index("-A DOCKER-USER -j RETURN")
    relays = [rule for rule in fixed["prerouting"] if IMDS_ADDRESS in rule]
    assert relays == [fixed["prerouting"][1]] and f"--to-destination {HARBOR_GATEWAY}:{IMDS_RELAY_PORT}" in relays[0], fixed[
        "prerouting"
    ]
    # INPUT: the accept of redirected connections, then the reset of every other, first in the chain.
    port_rules = [rule for rule in fixed["input"] if f"--dport {IMDS_RELAY_PORT}" in rule]
    assert port_rules == fixed["input"][1:3], fixed["input"]
    assert "-j ACCEPT" in port_rules[0] and "--ctorigdst" in port_rules[0] and "tcp-reset" in port_rules[1]


def test_without_the_relay_the_registry_stores_nothing_as_in_production(harnesses, registry_config, tmp_path):
    """Today's s3 mode: hop limit 2 and the guard let the registry reach IMDS, but its SDK never asks
    for a token, IMDS answers 401, and the chain runs out. (registryctl's newer SDK gets a token at
    hop limit 2: only the registry, which stores every pushed and proxied blob, failed.)"""
    result = run_registry(harnesses, registry_config, tmp_path, fixed=False)
    registry = result["registry"]
    assert not registry["ok"] and registry["stage"] == "write"
    assert "NoCredentialProviders" in registry["error"], registry
    assert result["registryctl"]["ok"], result["registryctl"]
    assert result["bucket"] == [result["registryctl"]["key"].lstrip("/")]
