"""The VM's SSH host key, as the VM itself printed it on its serial console.

The VM generates its own host key on first boot (cloud-init `cc_ssh`) and cloud-init's
`keys_to_console` module prints the public host keys to the console between
`-----BEGIN SSH HOST KEY KEYS-----` and `-----END SSH HOST KEY KEYS-----`
(cloudinit/config/cc_keys_to_console.py runs tools/write-ssh-key-fingerprints, which `cat`s each
/etc/ssh/ssh_host_*key.pub; both read in canonical/cloud-init 26.2 and in Debian's cloud-init
22.4, /usr/lib/cloud-init/write-ssh-key-fingerprints; config/cloud.cfg.tmpl runs the module in
the final stage on every distro). EC2 hands the console out through
GetConsoleOutput (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html),
to the deploying identity, not to the VM or anything on it. Only public keys cross: no private
host key exists outside the VM, and nothing on the VM can read it from user data or IMDS.
Jenkins' EC2 plugin verifies new agents the same way (JENKINS-62939). Who could forge the console:
AWS, or root on the VM (who holds the private key anyway); the key is read before the install puts
anything on the VM, and a console that shows two different ed25519 keys pins neither.

This module's path is part of every stack's state (Pulumi pickles a dynamic provider by reference:
module + class name); states from before issue 17 name it `components.host_key_provider`, which
components/__init__.py keeps resolvable. The provider holds
no state: its EC2 client is built inside each call, with the stack's region and the credentials
the AWS provider also uses (environment, profile, SSO: boto3's default chain).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ResourceProvider, UpdateResult
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.harbor import progress

BEGIN_KEYS = "-----BEGIN SSH HOST KEY KEYS-----"
END_KEYS = "-----END SSH HOST KEY KEYS-----"
KEY_TYPE = "ssh-ed25519"
# Only the tests point the client elsewhere (a loopback stand-in of EC2's Query API).
ENDPOINT_ENV = "HARBOR_CACHE_EC2_ENDPOINT"
INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}\Z")
# A key line as write-ssh-key-fingerprints prints it: `<type> <base64> [comment]`.
KEY_LINE_RE = re.compile(r"(?:^|\s)ssh-ed25519 ([A-Za-z0-9+/]+={0,2})(?:\s|$)")
# EC2 error codes (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
DENIED = {"UnauthorizedOperation", "AuthFailure", "AccessDenied", "AccessDeniedException", "OptInRequired", "Blocked"}
NOT_YET = {"InvalidInstanceID.NotFound", "IncorrectInstanceState", "RequestLimitExceeded", "Throttling", "Unavailable"}


class HostKeyError(Exception):
    """The host key could not be read; the message says why and what to check."""


def _ed25519_blob_ok(encoded: str) -> bool:
    """The base64 is an SSH wire-format ed25519 public key: string "ssh-ed25519", string of 32 bytes."""
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    name = KEY_TYPE.encode()
    header = struct.pack(">I", len(name)) + name + struct.pack(">I", 32)
    return len(blob) == len(header) + 32 and blob.startswith(header)


def host_keys_in_console(output: str) -> list[str]:
    """Every ed25519 host key line inside a complete BEGIN/END block, as `ssh-ed25519 <base64>`.

    The serial console ends lines with CRLF and may interleave kernel messages: lines are matched
    by content, markers anywhere in a line, and a key must decode to a well-formed ed25519 key.
    """
    keys: list[str] = []
    block: list[str] | None = None
    for line in output.replace("\r", "\n").split("\n"):
        if BEGIN_KEYS in line:
            block = []
        elif END_KEYS in line:
            if block is not None:
                keys.extend(block)
            block = None
        elif block is not None:
            match = KEY_LINE_RE.search(line)
            if match and _ed25519_blob_ok(match.group(1)):
                block.append(f"{KEY_TYPE} {match.group(1)}")
    return keys


def ed25519_host_key(output: str) -> str | None:
    """The one ed25519 host key the console shows, None while it shows none."""
    keys = sorted(set(host_keys_in_console(output)))
    if len(keys) > 1:
        raise HostKeyError(
            f"the console shows {len(keys)} different ed25519 host keys ({', '.join(k[-12:] for k in keys)}); "
            "refusing to pin any: replace the instance, or pin the right one by hand after checking it"
        )
    return keys[0] if keys else None


def ec2_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
        config=Config(connect_timeout=10, read_timeout=30, retries={"mode": "standard", "max_attempts": 5}),
    )


def wait_for_host_key(
    instance_id: str,
    region: str,
    timeout: float,
    interval: float,
    client_factory: Callable[[str], Any] = ec2_client,
) -> str:
    """Polls GetConsoleOutput until the VM has printed its ed25519 host key, at most `timeout` seconds."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    client = client_factory(region)
    started = time.monotonic()
    deadline = started + timeout
    announced = started
    latest = True
    last = "no answer yet"
    while True:
        if time.monotonic() - announced >= progress.EVERY:
            announced = time.monotonic()
            waited = announced - started
            progress.log(
                f"waiting for instance {instance_id}'s SSH host key on its console (cloud-init prints it when it finishes): "
                f"{waited:.0f} s of at most {timeout:g} s ({last})"
            )
        try:
            answer = client.get_console_output(InstanceId=instance_id, Latest=latest)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code in DENIED:
                raise HostKeyError(
                    f"ec2:GetConsoleOutput on {instance_id} in {region} was refused ({code}: {message}); "
                    "the identity that runs `pulumi up` needs ec2:GetConsoleOutput on the instance"
                ) from None
            if latest and code not in NOT_YET:
                # `Latest` (the live serial console) exists on Nitro instance types only; AWS does not
                # document the error others give, so any other refusal falls back to the buffered
                # output, posted shortly after boot (as avocado-cloud's EC2 console reader does).
                latest = False
                last = f"{code}: {message} (reading the buffered console output instead)"
                continue
            if code not in NOT_YET:
                raise HostKeyError(f"ec2:GetConsoleOutput on {instance_id} in {region} failed: {code}: {message}") from None
            last = f"{code}: {message}"
        except (NoCredentialsError, NoRegionError) as error:
            raise HostKeyError(f"cannot call ec2:GetConsoleOutput: {error}") from None
        except BotoCoreError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            key = ed25519_host_key(answer.get("Output") or "")
            if key:
                return key
            last = "console output without cloud-init's host key block yet" if answer.get("Output") else "no console output yet"
        if time.monotonic() + interval > deadline:
            raise HostKeyError(
                f"instance {instance_id} did not show its ed25519 SSH host key on its console within {timeout:g} s "
                f"(last: {last}). cloud-init prints it between {BEGIN_KEYS} and {END_KEYS} when it finishes; "
                f"see `aws ec2 get-console-output --latest --instance-id {instance_id} --region {region} --output text`"
            )
        time.sleep(interval)


def _unknown(value: Any) -> bool:
    return isinstance(value, Unknown) or value == rpc.UNKNOWN


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class ConsoleHostKeyProvider(ResourceProvider):
    """Create reads the key once per instance; a new instance id replaces it. Refresh keeps it."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {key: _number(news.get(key)) for key in ("instance_id", "region", "timeout_seconds", "poll_seconds")}
        failures = []
        instance_id = inputs["instance_id"]
        if not _unknown(instance_id) and not (isinstance(instance_id, str) and INSTANCE_ID_RE.match(instance_id)):
            failures.append(CheckFailure("instance_id", f"{instance_id!r} is not an EC2 instance id (i-...)"))
        if not _unknown(inputs["region"]) and not (isinstance(inputs["region"], str) and inputs["region"]):
            failures.append(CheckFailure("region", "region is required"))
        for key in ("timeout_seconds", "poll_seconds"):
            value = inputs[key]
            if not _unknown(value) and not (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
                failures.append(CheckFailure(key, f"{key} must be a positive number of seconds, got {value!r}"))
        return CheckResult(inputs, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        timeout, interval = float(props["timeout_seconds"]), float(props["poll_seconds"])
        key = wait_for_host_key(props["instance_id"], props["region"], timeout, interval)
        return CreateResult(id_=props["instance_id"], outs={**props, "public_key": key})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Only another instance has another key; the waiting bounds are no reason to read it again.
        replaces = [key for key in ("instance_id", "region") if _unknown(news.get(key)) or news.get(key) != olds.get(key)]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, "public_key": olds["public_key"]})


class ConsoleHostKey(pulumi.dynamic.Resource, module="ec2", name="ConsoleHostKey"):
    """`public_key`: the instance's ed25519 host key line (`ssh-ed25519 AAAA...`), public."""

    public_key: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        instance_id: pulumi.Input[str],
        region: str,
        timeout_seconds: int,
        poll_seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ConsoleHostKeyProvider(),
            name,
            {
                "instance_id": instance_id,
                "region": region,
                "timeout_seconds": timeout_seconds,
                "poll_seconds": poll_seconds,
                "public_key": None,
            },
            opts,
        )
