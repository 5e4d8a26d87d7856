"""Render every file that lands on the VM and on the nodes, offline, for review.

    python -m components.render --stack dev --out DIR [--set KEY=VALUE ...]

Reads Pulumi.<stack>.yaml plus the --set overrides (plain values, secrets included; JSON for lists
and objects) and writes each file under DIR at the path it gets on the VM (DIR/opt/harbor/harbor.yml),
the scripts the install runs over SSH (on stdin, never stored on the VM) under DIR/remote-commands/,
and node files under DIR/nodes/. No AWS, no Pulumi CLI. Secrets that the stack file holds only
encrypted, and generated ones, are replaced by clearly fake placeholders.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from components.nodes.mirrors import mirror_options
from components.nodes.outputs import node_files
from components.settings.config_reader import PROJECT, SettingsError
from components.settings.settings import Settings, parse_settings
from components.vm.cloud_init import render_cloud_init
from components.vm.files import remote_commands, vm_files
from components.vm.imds_guard import imds_guarded
from components.vm.imds_relay import imds_relay_files
from components.vm.operate_files import operate_files
from components.vm.secret_values import HarborSecrets, SharedSecretValues

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_ADMIN_PASSWORD = "PLACEHOLDER-not-the-real-admin-Passw0rd"  # noqa: S105 - a visible fake
PLACEHOLDER_DATABASE_PASSWORD = "PLACEHOLDER-not-the-real-database-password"  # noqa: S105
PLACEHOLDER_SECRET = "PLACEHOLDER-encrypted-in-stack-file"  # noqa: S105
PLACEHOLDER_ZONE_ID = "PLACEHOLDER-route53-zone-id"
# HA mode (replicas > 1): what HarborSharedSecrets generates at `pulumi up`; visible fakes of the
# lengths prepare accepts (the secret key must be 16 characters).
PLACEHOLDER_SHARED = SharedSecretValues(
    **{
        "secret_key": "PLACEHOLDERkey16",
        "token_private_key_pem": "-----BEGIN RSA PRIVATE KEY-----\nPLACEHOLDER of pulumi up\n-----END RSA PRIVATE KEY-----\n",
        "token_certificate_pem": "-----BEGIN CERTIFICATE-----\nPLACEHOLDER of pulumi up\n-----END CERTIFICATE-----\n",
        "core_secret": "PLACEHOLDERcore0",
        "jobservice_secret": "PLACEHOLDERjobs0",
        "csrf_key": "PLACEHOLDERcsrfKeyOf32Characters",
        "registry_http_secret": "PLACEHOLDERregistryHttpSecret000",
        "scan_robot_prefix": "PLACEHLD",
        "admin_password": PLACEHOLDER_ADMIN_PASSWORD,
    }
)


def stack_config(stack: str, root: Path = ROOT) -> tuple[dict[str, Any], str | None]:
    """(project keys -> values, aws:region) from Pulumi.<stack>.yaml; encrypted values become placeholders."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise SystemExit(
            f"no stack file {path.name}; stacks here: {', '.join(p.name for p in sorted(root.glob('Pulumi.*.yaml')))}"
        )
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    raw: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith(f"{PROJECT}:"):
            raw[key.split(":", 1)[1]] = _placeholders(value)
    return raw, config.get("aws:region")


def plain_keys(stack: str, root: Path = ROOT) -> set[str]:
    """Project keys whose value the stack file holds with no encrypted (`secure:`) part.

    The engine's own rule: an object value counts as secret when any value inside it is
    `{secure: ...}` (pulumi sdk/go/common/resource/config/value.go, hasSecureValue), which is what
    `pulumi config set --secret --path 'upstreamCredentials.<name>.password'` writes.
    """
    config = (yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}
    return {key.split(":", 1)[1] for key, value in config.items() if key.startswith(f"{PROJECT}:") and not _has_secure(value)}


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def _placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return PLACEHOLDER_SECRET
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def parse_override(text: str) -> tuple[str, Any]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise SystemExit(f"--set expects KEY=VALUE, got {text!r}")
    key = key.removeprefix(f"{PROJECT}:")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    # Numbers and booleans stay JSON-typed; anything that is not JSON is a string.
    return key, parsed if not isinstance(parsed, str) else value


def render_all(settings: Settings, admin_password: str | None = None, zone_id: str = PLACEHOLDER_ZONE_ID) -> dict[str, str]:
    """Every file, keyed by its relative path under the output folder."""
    if admin_password is None:
        admin_password = settings.admin_password.value if settings.admin_password else PLACEHOLDER_ADMIN_PASSWORD
    secrets = HarborSecrets(admin_password=admin_password, database_password=PLACEHOLDER_DATABASE_PASSWORD)
    shared = None
    if settings.high_availability:
        # Every node gets the same files; the admin password is the shared one.
        shared = replace(PLACEHOLDER_SHARED, admin_password=admin_password)
    files = {path.lstrip("/"): text for path, text in vm_files(settings, secrets, zone_id, shared).items()}
    files.update({path.lstrip("/"): text for path, text in operate_files(settings).items()})
    if imds_guarded(settings):
        files.update({path.lstrip("/"): text for path, text in imds_relay_files(settings).items()})
    files.update({f"remote-commands/{name}": text for name, text in remote_commands().items()})
    # User data as cloud-init keeps it: nothing secret, the VM makes its own host key.
    files["var/lib/cloud/instance/user-data.txt"] = render_cloud_init()
    files.update(node_files(settings.hostname, settings.upstreams, mirror_options(settings)))
    return files


def write_files(files: dict[str, str], out: Path) -> None:
    """Writes every file under `out`; refuses, before writing anything, a path that would leave it."""
    root = out.resolve()
    targets = {}
    for relative, text in sorted(files.items()):
        target = (root / relative).resolve()
        if Path(relative).is_absolute() or not target.is_relative_to(root) or target == root:
            raise ValueError(f"refusing to write {relative!r}: it is not inside {str(out)!r}")
        targets[target] = (relative, text)
    for target, (relative, text) in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if relative.endswith(".sh"):
            target.chmod(0o755)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the files into")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    options = parser.parse_args(argv)

    raw, region = stack_config(options.stack, ROOT)
    # Values given with --set come from the reviewer's command line, not from git.
    plain = plain_keys(options.stack, ROOT)
    for text in options.set:
        key, value = parse_override(text)
        if key == "aws:region":
            region = value
        else:
            raw[key] = value
            plain.discard(key)
    if raw.get("adminPassword") == PLACEHOLDER_SECRET:
        raw.pop("adminPassword")  # encrypted in the stack file: render with the placeholder instead
    try:
        settings = parse_settings(raw, stack=options.stack, region=region, plain_keys=plain)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    files = render_all(settings)
    write_files(files, options.out)
    print(f"wrote {len(files)} files under {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
