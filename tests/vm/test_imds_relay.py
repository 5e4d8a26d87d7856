"""The credential relay (files/imds-credential-relay.py) on its own, against the IMDS stand-in (tokens
required) in one network namespace: every answer is fetched fresh from IMDS (the registry's SDK asks
again only when Expiration has passed, so the relay must never hand out what it saw before), IMDS's
body passes through with Expiration 4 minutes early while that is still in the future, a token IMDS
no longer knows is renewed, a proxy in the environment is not used, a source outside RELAY_CLIENTS is
closed unanswered, idle connections neither pile up threads nor keep the registry out, and a request
line's control characters reach the log escaped. The relay inside the VM's network:
tests/vm/test_registry_s3.py."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.vm.imds_relay import IMDS_RELAY_SCRIPT, imds_relay_environment
from tests.paths import FILES
from tests.standins.imds_stand_in import CREDENTIALS
from tests.standins.netns import namespaces, require_netns

STAND_IN = Path(__file__).resolve().parents[1] / "standins" / "imds_stand_in.py"
IMDS = "169.254.169.254"
RELAY_ADDRESS = "127.0.0.1"
OUTSIDER = "127.0.0.2"
CREDENTIALS_URL = f"http://{RELAY_ADDRESS}:{{port}}/latest/meta-data/iam/security-credentials/"
EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Opens N connections from one source to the relay, sends nothing, and holds them.
IDLE_CONNECTIONS = """
import socket, sys, time
source, address, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
held = []
for _ in range(count):
    connection = socket.socket()
    connection.bind((source, 0))
    connection.connect((address, port))
    held.append(connection)
print("open", flush=True)
time.sleep(60)
"""


def expiring_in(delta: datetime.timedelta) -> str:
    return (datetime.datetime.now(datetime.UTC) + delta).strftime(EXPIRATION_FORMAT)


def minus_minutes(expiration: str, minutes: int) -> str:
    moment = datetime.datetime.strptime(expiration, EXPIRATION_FORMAT) - datetime.timedelta(minutes=minutes)
    return moment.strftime(EXPIRATION_FORMAT)


def answer(namespace, url: str, source: str = RELAY_ADDRESS) -> tuple[str, str]:
    result = namespace.run("curl", "-s", "--max-time", "3", "--interface", source, "-w", "\n%{http_code}", url, check=False)
    body, _, status = result.stdout.rpartition("\n")
    return status, body


def wait_for(namespace, url: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while namespace.run("curl", "-s", "-o", "/dev/null", "--max-time", "1", url, check=False).returncode:
        assert time.monotonic() < deadline, log.read_text() if log.exists() else url
        time.sleep(0.1)


def start_imds(namespace, tmp_path: Path, credentials: dict, name: str):
    source = tmp_path / f"{name}.json"
    source.write_text(json.dumps(credentials))
    log = tmp_path / f"{name}.log"
    process = namespace.start(sys.executable, str(STAND_IN), IMDS, "1", str(source), log=log)
    wait_for(namespace, f"http://{IMDS}/", log)
    return process


def start_relay(box, tmp_path: Path, **extra_environment: str) -> tuple[subprocess.Popen, str, Path]:
    environment = {**imds_relay_environment(), "RELAY_LISTEN": RELAY_ADDRESS, "RELAY_CLIENTS": f"{RELAY_ADDRESS}/32"}
    relay_log = tmp_path / "relay.log"
    relay = box.start(
        sys.executable,
        str(FILES / IMDS_RELAY_SCRIPT),
        log=relay_log,
        env={"PATH": "/usr/bin:/bin", **environment, **extra_environment},
    )
    url = CREDENTIALS_URL.format(port=environment["RELAY_PORT"])
    wait_for(box, url, relay_log)
    return relay, url, relay_log


def test_the_relay_passes_fresh_credentials_through_and_renews_its_token(tmp_path):
    require_netns("curl")
    first = {
        "AccessKeyId": "ASIAFIRSTFIRSTFIRST0",
        "SecretAccessKey": "first",
        "Token": "t1",
        "Expiration": expiring_in(datetime.timedelta(hours=6)),
    }
    second = {
        "AccessKeyId": "ASIASECONDSECONDSEC0",
        "SecretAccessKey": "second",
        "Token": "t2",
        # Closer to its end than the margin: served as IMDS has it, never as already expired.
        "Expiration": expiring_in(datetime.timedelta(minutes=3)),
    }
    with namespaces("relay") as ns:
        box = ns["relay"]
        box.run("ip", "addr", "add", f"{IMDS}/32", "dev", "lo")
        box.run("ip", "addr", "add", f"{OUTSIDER}/8", "dev", "lo")
        imds = start_imds(box, tmp_path, first, "imds-first")
        # A proxy in the environment (nothing listens there): IMDS is asked directly all the same.
        dead_proxy = f"http://{OUTSIDER}:9"
        _, url, relay_log = start_relay(box, tmp_path, http_proxy=dead_proxy, HTTP_PROXY=dead_proxy)

        assert answer(box, url) == ("200", "harbor-vm-role"), relay_log.read_text()
        status, body = answer(box, url + "harbor-vm-role")
        assert status == "200" and json.loads(body)["AccessKeyId"] == first["AccessKeyId"]
        assert json.loads(body)["Code"] == "Success"
        # 4 minutes early: the SDK renews (and stops presigning with it) before IMDS's expiry.
        assert json.loads(body)["Expiration"] == minus_minutes(first["Expiration"], 4)
        # Everything else as IMDS has it (the stand-in's Code and Type, the session).
        assert {**json.loads(body), "Expiration": first["Expiration"]} == {**CREDENTIALS, **first}

        # IMDS rotates the role's credentials (and, restarted, forgets the relay's token).
        imds.terminate()
        imds.wait(5)
        start_imds(box, tmp_path, second, "imds-second")
        status, body = answer(box, url + "harbor-vm-role")
        assert status == "200", relay_log.read_text()
        assert json.loads(body)["AccessKeyId"] == second["AccessKeyId"] and json.loads(body)["Expiration"] == second["Expiration"]

        # Only RELAY_CLIENTS: another source address is closed before a byte is read (curl: 52, empty
        # reply); unknown role names pass IMDS's 404 on.
        refused = box.run("curl", "-s", "--max-time", "3", "--interface", OUTSIDER, url, check=False)
        assert refused.returncode == 52 and refused.stdout == "", refused
        assert answer(box, url + "someone-else")[0] == "404"
        assert answer(box, url + "..%2f..%2fuser-data")[0] == "404"
        # `..` as the role would be /latest/meta-data/iam/ at IMDS (the instance profile's ARN): not asked.
        assert box.run("curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", url + "..").stdout == "404"
        assert "meta-data/iam/security-credentials/.." not in (tmp_path / "imds-second.log").read_text()


def test_idle_connections_neither_pile_up_threads_nor_keep_the_registry_out(tmp_path):
    """Without a timeout, a source check before the read and a cap, every idle connection held a
    thread for ever (the reviewer's 200 connections: 201 threads)."""
    require_netns("curl")
    credentials = {"AccessKeyId": "ASIAIDLEIDLEIDLEIDL0", "SecretAccessKey": "s", "Token": "t"}
    credentials["Expiration"] = expiring_in(datetime.timedelta(hours=6))
    with namespaces("relay") as ns:
        box = ns["relay"]
        box.run("ip", "addr", "add", f"{IMDS}/32", "dev", "lo")
        box.run("ip", "addr", "add", f"{OUTSIDER}/8", "dev", "lo")
        start_imds(box, tmp_path, credentials, "imds")
        relay, url, relay_log = start_relay(box, tmp_path)
        port = imds_relay_environment()["RELAY_PORT"]
        holders = []
        for source, count in ((OUTSIDER, 200), (RELAY_ADDRESS, 40)):
            log = tmp_path / f"idle-{source}.log"
            holders.append(box.start(sys.executable, "-c", IDLE_CONNECTIONS, source, RELAY_ADDRESS, port, str(count), log=log))
            deadline = time.monotonic() + 20
            while "open" not in log.read_text():
                # Without the fixes the relay starts a thread per connection and falls so far behind
                # that connects wait for SYN retransmits: it does not even take them all in time.
                assert holders[-1].poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"{count} idle connections from {source} not accepted in 20 s"
                time.sleep(0.1)
        time.sleep(0.5)
        threads = int(
            next(
                line for line in Path(f"/proc/{relay.pid}/status").read_text().splitlines() if line.startswith("Threads:")
            ).split()[1]
        )
        assert threads <= 1 + 8, threads
        # Held connections are dropped after the request timeout; the registry is answered again.
        deadline = time.monotonic() + 15
        while (status := answer(box, url + "harbor-vm-role")[0]) != "200":
            assert time.monotonic() < deadline, (status, relay_log.read_text())
            time.sleep(0.5)
        assert all(holder.poll() is None for holder in holders), "the idle connections were still held"


def test_control_characters_of_a_request_line_reach_the_log_escaped(tmp_path):
    require_netns("curl")
    with namespaces("relay") as ns:
        box = ns["relay"]
        box.run("ip", "addr", "add", f"{IMDS}/32", "dev", "lo")
        start_imds(box, tmp_path, {"AccessKeyId": "A", "SecretAccessKey": "s", "Token": "t", "Expiration": "x"}, "imds")
        _, _, relay_log = start_relay(box, tmp_path)
        port = imds_relay_environment()["RELAY_PORT"]
        forged = "GET /x\x1b[2J\rforged line HTTP/1.1\r\n\r\n"
        send = "import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
        send += "s.sendall(sys.argv[3].encode()); s.recv(1000)"
        box.run(sys.executable, "-c", send, RELAY_ADDRESS, port, forged)
        time.sleep(0.3)
        log = relay_log.read_text()
        assert "\x1b" not in log and "\r" not in log, repr(log)
        assert "/x\\x1b[2J\\x0dforged line" in log, log


@pytest.mark.parametrize("missing", ["RELAY_LISTEN", "IMDS_URL"])
def test_the_relay_refuses_to_start_without_its_settings(missing, tmp_path):
    environment = {key: value for key, value in imds_relay_environment().items() if key != missing}
    result = subprocess.run(
        [sys.executable, str(FILES / IMDS_RELAY_SCRIPT)], env=environment, capture_output=True, text=True, timeout=10
    )
    assert result.returncode != 0 and missing in result.stderr
