"""DNS-01 through the security group the program registers, with the real ACME pieces Debian ships.

Traefik's ACME client is lego. Before it tells the CA to validate, lego's pre-check looks for the
TXT record through the recursive resolver and then, unless told not to, asks each authoritative
nameserver of the zone directly on port 53 (go-acme/lego v4.9.1 challenge/dns01/precheck.go
checkDNSPropagation -> lookupNameservers -> checkAuthoritativeNss; v5.2.2, the version Traefik
v3.6.24 vendors, dns_challenge_precheck.go checkAuthoritativeNameserversPropagation). Our security
group lets the VM out on TCP 80/443 only, so that last step cannot work; the VPC resolver is never
filtered by a security group.

Traefik's `propagation.disableANSChecks=true` is lego's DisableAuthoritativeNssPropagationRequirement
(traefik v3.6.24 pkg/provider/acme/provider.go; the `traefikVersion` default `v3.6` floats: v3.6.0
vendors lego v4.28.0, v3.6.20 v4.35.2, v3.6.24 lego/v5 v5.2.2, all with this option); setting any
`propagation` option also drops the "all recursive nameservers" check (RequireAllRNS defaults to
false), so what is left is one TXT query to the recursive resolver. lego 4.9.1's CLI has the same
switch as `--dns.disable-cp` (DisableCompletePropagationRequirement: one recursive query, then
done). Renewals run the same code.

Namespaces: `vm` (lego), `internet` (pebble on 443, the zone's authoritative nameserver, the resolver).
DNS is dnsmasq: authoritative for the zone (SOA, NS, the TXT record) and, as the VPC resolver, a
forwarder to it with no cache. pebble-challtestsrv's DNS answers no SOA or NS queries (pebble v2.4.0
vendor/github.com/letsencrypt/challtestsrv/dns.go), which lego needs to find the zone, so it is not
used here. The security group sits outside the VM, like the ENI's filter: on the internet side of
the VM's link, packets from the VM pass only by one of the program's egress rules (or to the VPC
resolver) and are otherwise dropped silently. lego's `exec` provider stands in for the route53 API
call: it writes the TXT record into the authoritative server's data and restarts it (the route53
provider's wait for INSYNC is this change being live before the provider returns).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.standins.netns import link, namespaces, require_netns
from tests.standins.pulumi_harness import dev_config, run_program

ZONE = "example.test"
HOSTNAME = f"harbor.{ZONE}"
VM = "10.53.0.2"
INTERNET = "10.53.0.1"
RESOLVER = "10.53.1.2"  # the VPC resolver (169.254.169.253 in a VPC)
NAMESERVER = "10.53.2.53"  # ns1.example.test, the zone's authoritative nameserver
PEBBLE = "10.53.3.10"


def security_group_egress() -> list[dict]:
    """The egress rules exactly as the program registers them (under Pulumi mocks)."""
    return run_program(dev_config()).one("aws:ec2/securityGroup:SecurityGroup").inputs["egress"]


def iptables_for(egress: list[dict], interface: str) -> list[list[str]]:
    """The security group as a stateful filter outside the VM (like the ENI's): on the internet side
    of the VM's link, packets from the VM pass only by a rule and are dropped silently otherwise."""
    rules = [
        ["-A", "INPUT", "-i", interface, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        # Never filtered by a security group (DESIGN.md, "The VM and its network").
        ["-A", "INPUT", "-i", interface, "-d", RESOLVER, "-j", "ACCEPT"],
    ]
    for rule in egress:
        assert rule["protocol"] in ("tcp", "udp"), rule
        ports = f"{int(rule['fromPort'])}:{int(rule['toPort'])}"
        for cidr in rule.get("cidrBlocks", []):
            rules.append(["-A", "INPUT", "-i", interface, "-p", rule["protocol"], "-d", cidr, "--dport", ports, "-j", "ACCEPT"])
    return [*rules, ["-A", "INPUT", "-i", interface, "-j", "DROP"]]


def dnsmasq_conf(directory: Path, role: str, lines: list[str]) -> Path:
    common = ["port=53", "bind-interfaces", "no-resolv", "no-hosts", "user=root", f"pid-file={directory / role}.pid"]
    path = directory / f"{role}.conf"
    path.write_text("\n".join(common + lines) + "\n")
    return path


EXEC_PROVIDER = """#!/bin/bash
# lego exec provider (lego v4.9.1 providers/dns/exec/exec.go): $1 present|cleanup, $2 fqdn, $3 value.
set -euo pipefail
records={records}
name=${{2%.}}
case $1 in
  present) echo "txt-record=$name,\\"$3\\"" >>"$records" ;;
  cleanup) grep -vF -- "$3" "$records" >"$records.new" || true; mv "$records.new" "$records" ;;
esac
old=$(cat {pidfile})
kill "$old"  # the supervisor starts it again with the new records
for _ in $(seq 50); do
  [ -s {pidfile} ] && kill -0 "$(cat {pidfile})" 2>/dev/null && [ "$(cat {pidfile})" != "$old" ] && exit 0
  sleep 0.1
done
"""


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    require_netns("lego", "pebble", "dnsmasq", "openssl")
    work = tmp_path_factory.mktemp("dns01")
    with namespaces("vm", "internet") as ns:
        vm, internet = ns["vm"], ns["internet"]
        _, vm_link = link(vm, f"{VM}/24", internet, f"{INTERNET}/24")
        vm.run("ip", "route", "add", "default", "via", INTERNET)
        for address in (RESOLVER, NAMESERVER, PEBBLE):
            internet.run("ip", "addr", "add", f"{address}/32", "dev", "lo")
        vm.etc_file("resolv.conf", f"nameserver {RESOLVER}\n")

        records = work / "challenge.conf"
        records.write_text("")
        auth = dnsmasq_conf(
            work,
            "auth",
            [
                f"listen-address={NAMESERVER}",
                f"auth-server=ns1.{ZONE},{NAMESERVER}",
                f"auth-zone={ZONE}",
                f"auth-soa=1,hostmaster.{ZONE},60,60,600,60",
                f"host-record=ns1.{ZONE},{NAMESERVER}",
                f"host-record={HOSTNAME},{VM}",
                f"conf-file={records}",
                "log-queries",
                "log-facility=-",
            ],
        )
        resolver = dnsmasq_conf(work, "resolver", [f"listen-address={RESOLVER}", f"server={NAMESERVER}", "cache-size=0"])
        supervisor = f"while :; do dnsmasq -k -C {auth}; sleep 0.1; done"
        internet.start("bash", "-c", supervisor, log=work / "auth.log")
        internet.start("dnsmasq", "-k", "-C", str(resolver), log=work / "resolver.log")

        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]
            + ["-subj", "/CN=pebble", "-addext", f"subjectAltName=IP:{PEBBLE}"]
            + ["-keyout", str(work / "pebble.key"), "-out", str(work / "pebble.pem")],
            check=True,
            capture_output=True,
        )
        # pebble's own example config (Debian: /usr/share/doc/pebble/examples/pebble-config.json), on 443.
        pebble_config = {
            "listenAddress": f"{PEBBLE}:443",
            "managementListenAddress": f"{PEBBLE}:15000",
            "certificate": str(work / "pebble.pem"),
            "privateKey": str(work / "pebble.key"),
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
        (work / "pebble.json").write_text(json.dumps({"pebble": pebble_config}))
        pebble_env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        # Like Let's Encrypt, pebble validates by asking DNS for the TXT record (here: the zone's nameserver).
        pebble = ["pebble", "-config", str(work / "pebble.json"), "-dnsserver", f"{NAMESERVER}:53"]
        internet.start(*pebble, log=work / "pebble.log", env=pebble_env)

        provider = work / "exec-provider.sh"
        provider.write_text(EXEC_PROVIDER.format(records=records, pidfile=work / "auth.pid"))
        provider.chmod(0o755)

        deadline = time.monotonic() + 15
        while True:
            probe = internet.run("curl", "-sk", "--max-time", "1", f"https://{PEBBLE}/dir", check=False)
            if probe.returncode == 0 and (work / "auth.pid").exists():
                break
            assert time.monotonic() < deadline, (work / "pebble.log").read_text()
            time.sleep(0.2)
        yield vm, work, internet, vm_link


def obtain(network, *, egress: list[dict], lego_flags: list[str], run: str) -> subprocess.CompletedProcess:
    vm, work, internet, vm_link = network
    internet.run("iptables", "-F", "INPUT")
    for rule in iptables_for(egress, vm_link):
        internet.run("iptables", *rule)
    env = {
        **os.environ,
        "EXEC_PATH": str(work / "exec-provider.sh"),
        # Short, so the failing case ends in seconds (the default is 60 s; Traefik's route53 default 2 min).
        "EXEC_PROPAGATION_TIMEOUT": "6",
        "EXEC_POLLING_INTERVAL": "1",
        "LEGO_CA_CERTIFICATES": str(work / "pebble.pem"),
    }
    command = ["lego", "--accept-tos", "--email", "acme@example.test", "--server", f"https://{PEBBLE}/dir"]
    command += ["--path", str(work / run), "--domains", HOSTNAME, "--dns", "exec", "--dns-timeout", "2", *lego_flags, "run"]
    return vm.run(*command, check=False, timeout=45, env=env)


def certificate(work: Path, run: str) -> Path:
    return work / run / "certificates" / f"{HOSTNAME}.crt"


def test_todays_default_cannot_reach_the_authoritative_nameservers(network):
    result = obtain(network, egress=security_group_egress(), lego_flags=[], run="ans-checks")
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert "time limit exceeded" in log and f"{NAMESERVER}:53" in log and "i/o timeout" in log, log[-3000:]
    assert not certificate(network[1], "ans-checks").exists()


def test_without_the_authoritative_check_the_certificate_is_issued(network):
    # Traefik: --certificatesresolvers.<r>.acme.dnschallenge.propagation.disableANSChecks=true
    result = obtain(network, egress=security_group_egress(), lego_flags=["--dns.disable-cp"], run="no-ans-checks")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    issued = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(certificate(network[1], "no-ans-checks"))],
        check=True,
        capture_output=True,
        text=True,
    )
    assert f"DNS:{HOSTNAME}" in issued.stdout


def test_the_setup_is_complete_when_dns_may_leave_the_vm(network):
    """Control: the same default check passes once port 53 is open, so the failure above is the filter."""
    open_dns = [{"protocol": proto, "fromPort": 53, "toPort": 53, "cidrBlocks": ["0.0.0.0/0"]} for proto in ("udp", "tcp")]
    result = obtain(network, egress=security_group_egress() + open_dns, lego_flags=[], run="dns-open")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert certificate(network[1], "dns-open").exists()
