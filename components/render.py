"""Render every file that lands on the VM and on the nodes, offline, for review.

    python -m components.render --stack dev --out DIR [--config-file FILE] [--set KEY=VALUE ...]

Run by a python without the project's packages, it runs itself again with venv/bin/python (which
scripts/test.sh and scripts/deploy.sh create), or says how to make that venv.

Reads Pulumi.<stack>.yaml (or the --config-file, as `pulumi --config-file` does) plus the --set
overrides (plain values, secrets included; YAML or JSON for lists and objects) and writes each file
under DIR at the path it gets on the VM (DIR/opt/harbor/harbor.yml) with the mode it gets there,
every script the remote commands send (on stdin, never stored on the VM) under DIR/remote-commands/,
and node files under DIR/nodes/. No AWS, no Pulumi CLI. Secrets that the stack file holds only
encrypted, and generated ones, are replaced by clearly fake placeholders.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / "venv" / "bin" / "python"
# Set when this module ran itself again with the venv's python: never a second time.
REEXEC_MARK = "HARBOR_CACHE_RENDER_IN_VENV"


def run_with_the_venv(missing: str) -> None:
    """The README says `python -m components.render`: a python that lacks the project's packages
    hands over to the venv's (os.execv: same arguments, same terminal), or says how to get one."""
    if __name__ == "__main__" and VENV_PYTHON.exists() and not os.environ.get(REEXEC_MARK):
        os.environ[REEXEC_MARK] = "1"
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), "-m", "components.render", *sys.argv[1:]])  # noqa: S606
    how = (
        "it exists but lacks it too: `bash scripts/test.sh` installs it again"
        if VENV_PYTHON.exists()
        else "make it with `python3 -m venv venv && venv/bin/pip install --require-hashes -r requirements.lock`"
    )
    raise SystemExit(
        f"python -m components.render needs the project's packages, and {sys.executable} lacks {missing!r}: "
        f"run it with the venv's python, venv/bin/python -m components.render ... ({how})"
    )


try:
    import yaml

    from components.nodes.mirrors import mirror_options
    from components.nodes.outputs import node_files
    from components.settings.config_reader import PROJECT, SettingsError
    from components.settings.settings import Settings, parse_settings
    from components.vm.cloud_init import render_cloud_init
    from components.vm.file_modes import EXECUTABLE_MODE, PLAIN_MODE, USER_DATA_PATH, file_mode
    from components.vm.files import remote_commands, vm_files
    from components.vm.imds_guard import imds_guarded
    from components.vm.imds_relay import imds_relay_files
    from components.vm.node_check import node_check_files
    from components.vm.operate_files import operate_files
    from components.vm.runtime_drain import runtime_drain_files
    from components.vm.schedules_check import schedules_checked, schedules_files
    from components.vm.secret_values import HarborSecrets, SharedSecretValues
except ModuleNotFoundError as error:
    run_with_the_venv(error.name or str(error))

PLACEHOLDER_ADMIN_PASSWORD = "PLACEHOLDER-not-the-real-admin-Passw0rd"  # noqa: S105 - a visible fake
PLACEHOLDER_DATABASE_PASSWORD = "PLACEHOLDER-not-the-real-database-password"  # noqa: S105
PLACEHOLDER_SECRET = "PLACEHOLDER-encrypted-in-stack-file"  # noqa: S105
PLACEHOLDER_ZONE_ID = "PLACEHOLDER-route53-zone-id"
# The stack's alarm topic exists only once `up` made it (the output alarmTopicArn).
PLACEHOLDER_ALARM_TOPIC_ARN = "arn:aws:sns:PLACEHOLDER-region:000000000000:PLACEHOLDER-alarm-topic"
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


def stack_file(stack: str, root: Path = ROOT) -> Path:
    """Pulumi.<stack>.yaml in the project folder, where the Pulumi CLI looks for it."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise SystemExit(
            f"no stack file {path.name}; stacks here: {', '.join(p.name for p in sorted(root.glob('Pulumi.*.yaml')))}"
        )
    return path


def stack_config(path: Path) -> tuple[dict[str, Any], str | None]:
    """(project keys -> values, aws:region) from a stack file; encrypted values become placeholders."""
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    raw: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith(f"{PROJECT}:"):
            raw[key.split(":", 1)[1]] = _placeholders(value)
    return raw, config.get("aws:region")


def foreign_config(path: Path) -> dict[str, Any]:
    """The stack file's keys outside the project's namespace (namespace:key), aws:region among them."""
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return {key: _placeholders(value) for key, value in config.items() if not key.startswith(f"{PROJECT}:")}


def plain_keys(path: Path) -> set[str]:
    """Project keys whose value the stack file holds with no encrypted (`secure:`) part.

    The engine's own rule: an object value counts as secret when any value inside it is
    `{secure: ...}` (pulumi sdk/go/common/resource/config/value.go, hasSecureValue), which is what
    `pulumi config set --secret --path 'upstreamCredentials.<name>.password'` writes.
    """
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
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
    """KEY=VALUE: a list or object in YAML (or JSON, which is YAML) when the value starts like one,
    else the string, as the engine hands the program every value (the settings read its type)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise SystemExit(f"--set expects KEY=VALUE, got {text!r}")
    key = key.removeprefix(f"{PROJECT}:")
    if not value.lstrip().startswith(("[", "{", "- ")) and "\n" not in value:
        return key, value
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SystemExit(
            f"--set {key}: the value is not valid YAML ({problem}{at}); lists and objects are YAML or JSON, "
            "e.g. --set 'allowedCidrs=[10.0.0.0/8, 192.168.1.7/32]'"
        ) from None


def render_all(
    settings: Settings,
    admin_password: str | None = None,
    zone_id: str = PLACEHOLDER_ZONE_ID,
    alarm_topic_arn: str = PLACEHOLDER_ALARM_TOPIC_ARN,
) -> dict[str, str]:
    """Every file, keyed by its relative path under the output folder."""
    if admin_password is None:
        admin_password = settings.admin_password.value if settings.admin_password else PLACEHOLDER_ADMIN_PASSWORD
    secrets = HarborSecrets(admin_password=admin_password, database_password=PLACEHOLDER_DATABASE_PASSWORD)
    shared = None
    if settings.high_availability:
        # Every node gets the same files; the admin password is the shared one.
        shared = replace(PLACEHOLDER_SHARED, admin_password=admin_password)
    files = {path.lstrip("/"): text for path, text in vm_files(settings, secrets, zone_id, shared).items()}
    files.update({path.lstrip("/"): text for path, text in operate_files(settings, alarm_topic_arn).items()})
    if imds_guarded(settings):
        files.update({path.lstrip("/"): text for path, text in imds_relay_files(settings).items()})
    if settings.high_availability:
        # Every node checks itself (vm/probe.py); node 0, shown here, also restores Harbor's
        # schedules after a Redis loss (vm/install.py).
        files.update({path.lstrip("/"): text for path, text in node_check_files(settings).items()})
        # Every node drains itself around a runtime upgrade, node 0's hour shown (vm/runtime_drain.py).
        files.update({path.lstrip("/"): text for path, text in runtime_drain_files(0).items()})
    if schedules_checked(settings, 0):
        files.update({path.lstrip("/"): text for path, text in schedules_files(settings).items()})
    files.update({f"remote-commands/{name}": text for name, text in remote_commands().items()})
    # User data as cloud-init keeps it: nothing secret, the VM makes its own host key.
    files[USER_DATA_PATH.lstrip("/")] = render_cloud_init()
    files.update(node_files(settings.hostname, settings.upstreams, mirror_options(settings)))
    return files


def render_modes(settings: Settings, files: dict[str, str]) -> dict[str, str]:
    """The mode of each rendered file: on the VM, the one the remote commands write it with
    (vm/file_modes.py); the remote scripts are executable; node files are plain."""
    modes = {}
    for relative in files:
        if relative.startswith("remote-commands/"):
            modes[relative] = EXECUTABLE_MODE
        elif relative.startswith("nodes/"):
            modes[relative] = PLAIN_MODE
        else:
            # Rendered with the shared values exactly when HA (render_all).
            modes[relative] = file_mode(f"/{relative}", settings, shared=settings.high_availability)
    return modes


def write_files(files: dict[str, str], out: Path, modes: dict[str, str] | None = None) -> None:
    """Writes every file under `out` with its mode (`modes`, else 0644) from the first byte; refuses,
    before writing anything, a path that would leave `out`."""
    root = out.resolve()
    targets = {}
    for relative, text in sorted(files.items()):
        target = (root / relative).resolve()
        if Path(relative).is_absolute() or not target.is_relative_to(root) or target == root:
            raise ValueError(f"refusing to write {relative!r}: it is not inside {str(out)!r}")
        targets[target] = (relative, text)
    for target, (relative, text) in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = int((modes or {}).get(relative, PLAIN_MODE), 8)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(descriptor, "w") as handle:
            os.fchmod(descriptor, mode)  # a file rendered before keeps its old mode, and the umask cuts
            handle.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the files into")
    parser.add_argument(
        "--config-file", type=Path, help="read the stack's configuration from this file instead of Pulumi.<stack>.yaml"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    options = parser.parse_args(argv)

    path = options.config_file or stack_file(options.stack, ROOT)
    if not path.is_file():
        raise SystemExit(f"--config-file {str(path)!r}: no such file")
    raw, region = stack_config(path)
    # Values given with --set come from the reviewer's command line, not from git.
    plain = plain_keys(path)
    foreign = foreign_config(path)
    for text in options.set:
        key, value = parse_override(text)
        if key == "aws:region":
            region = value
        elif ":" in key:
            foreign[key] = value
        else:
            raw[key] = value
            plain.discard(key)
    if raw.get("adminPassword") == PLACEHOLDER_SECRET:
        raw.pop("adminPassword")  # encrypted in the stack file: render with the placeholder instead
    try:
        settings = parse_settings(raw, stack=options.stack, region=region, plain_keys=plain, foreign=foreign)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    files = render_all(settings)
    write_files(files, options.out, render_modes(settings, files))
    print(f"wrote {len(files)} files under {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
