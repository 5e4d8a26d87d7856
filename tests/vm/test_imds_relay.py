"""The credential relay (files/imds-credential-relay.py) on its own, against the IMDS stand-in (tokens
required) in one network namespace: every answer is fetched fresh from IMDS (the registry's SDK asks
again only when Expiration has passed, so the relay must never hand out what it saw before), IMDS's
body and Expiration pass through unchanged, a token IMDS no longer knows is renewed, and a source
outside RELAY_CLIENTS gets 403. The relay inside the VM's network: tests/vm/test_registry_s3.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.vm.imds_relay import IMDS_RELAY_SCRIPT, imds_relay_environment
from tests.paths import FILES
from tests.standins.netns import namespaces, require_netns

STAND_IN = Path(__file__).resolve().parents[1] / "standins" / "imds_stand_in.py"
IMDS = "169.254.169.254"
RELAY_ADDRESS = "127.0.0.1"
CREDENTIALS_URL = f"http://{RELAY_ADDRESS}:{{port}}/latest/meta-data/iam/security-credentials/"


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


def test_the_relay_passes_fresh_credentials_through_and_renews_its_token(tmp_path):
    require_netns("curl")
    first = {
        "AccessKeyId": "ASIAFIRSTFIRSTFIRST0",
        "SecretAccessKey": "first",
        "Token": "t1",
        "Expiration": "2026-12-06T06:00:00Z",
    }
    second = {
        "AccessKeyId": "ASIASECONDSECONDSEC0",
        "SecretAccessKey": "second",
        "Token": "t2",
        "Expiration": "2026-12-06T07:00:00Z",
    }
    with namespaces("relay") as ns:
        box = ns["relay"]
        box.run("ip", "addr", "add", f"{IMDS}/32", "dev", "lo")
        box.run("ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
        imds = start_imds(box, tmp_path, first, "imds-first")
        environment = {**imds_relay_environment(), "RELAY_LISTEN": RELAY_ADDRESS, "RELAY_CLIENTS": f"{RELAY_ADDRESS}/32"}
        relay_log = tmp_path / "relay.log"
        box.start(sys.executable, str(FILES / IMDS_RELAY_SCRIPT), log=relay_log, env={"PATH": "/usr/bin:/bin", **environment})
        url = CREDENTIALS_URL.format(port=environment["RELAY_PORT"])
        wait_for(box, url, relay_log)

        assert answer(box, url) == ("200", "harbor-vm-role")
        status, body = answer(box, url + "harbor-vm-role")
        assert status == "200" and json.loads(body)["AccessKeyId"] == first["AccessKeyId"]
        assert json.loads(body)["Expiration"] == first["Expiration"] and json.loads(body)["Code"] == "Success"

        # IMDS rotates the role's credentials (and, restarted, forgets the relay's token).
        imds.terminate()
        imds.wait(5)
        start_imds(box, tmp_path, second, "imds-second")
        status, body = answer(box, url + "harbor-vm-role")
        assert status == "200", relay_log.read_text()
        assert json.loads(body)["AccessKeyId"] == second["AccessKeyId"] and json.loads(body)["Expiration"] == second["Expiration"]

        # Only RELAY_CLIENTS: another source address is refused; unknown role names pass IMDS's 404 on.
        assert answer(box, url, source="127.0.0.2")[0] == "403"
        assert answer(box, url + "someone-else")[0] == "404"
        assert answer(box, url + "..%2f..%2fuser-data")[0] == "404"
        # `..` as the role would be /latest/meta-data/iam/ at IMDS (the instance profile's ARN): not asked.
        assert box.run("curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", url + "..").stdout == "404"
        assert "meta-data/iam/security-credentials/.." not in (tmp_path / "imds-second.log").read_text()


@pytest.mark.parametrize("missing", ["RELAY_LISTEN", "IMDS_URL"])
def test_the_relay_refuses_to_start_without_its_settings(missing, tmp_path):
    environment = {key: value for key, value in imds_relay_environment().items() if key != missing}
    result = subprocess.run(
        [sys.executable, str(FILES / IMDS_RELAY_SCRIPT)], env=environment, capture_output=True, text=True, timeout=10
    )
    assert result.returncode != 0 and missing in result.stderr
