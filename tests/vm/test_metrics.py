"""Harbor's Prometheus metrics: enabled in harbor.yml, reachable only from metricsAllowedCidrs,
a ready scrape config, and the exporter's env file (it holds the database password) kept private."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from components.vm import operate_files
from components.vm.files import FILES_DIR
from components.vm.harbor_yml import render_harbor_yml
from components.vm.secret_values import HarborSecrets
from tests.conftest import unavailable
from tests.settings.test_settings import parse, problems_of
from tests.standins.pulumi_harness import dev_config, run_program

SG = "aws:ec2/securityGroup:SecurityGroup"


def test_harbor_yml_enables_metrics_on_the_port_the_security_group_opens():
    rendered = yaml.safe_load(render_harbor_yml(parse(), HarborSecrets("Abcdefg1", "database1")))
    # Harbor's prepare publishes nginx's 9090 on metric.port (docker-compose.yml.jinja) and serves
    # /metrics there (nginx.http.conf.jinja, `location = /metrics`): the path is nginx's, fixed.
    assert rendered["metric"] == {"enabled": True, "port": operate_files.METRICS_PORT, "path": "/metrics"}


def metrics_rules(config: dict) -> list[dict]:
    group = run_program(config).one(SG)
    return [rule for rule in group.inputs["ingress"] if rule["fromPort"] == operate_files.METRICS_PORT]


def test_no_metrics_ingress_by_default():
    assert metrics_rules(dev_config()) == []


def test_metrics_port_opens_to_the_listed_cidrs_only():
    (rule,) = metrics_rules({**dev_config(), "harbor-cache:metricsAllowedCidrs": ["10.20.0.0/16", "fd12:3456:789a:1::/64"]})
    assert rule["toPort"] == 9090 and rule["protocol"] == "tcp"
    assert rule["cidrBlocks"] == ["10.20.0.0/16"] and rule["ipv6CidrBlocks"] == ["fd12:3456:789a:1::/64"]


def test_metrics_cidrs_are_validated():
    assert any("metricsAllowedCidrs" in p and "'0.0.0.0/0'" in p for p in problems_of(metricsAllowedCidrs=["0.0.0.0/0"]))
    assert any("metricsAllowedCidrs" in p and "'10.0.0.300/8'" in p for p in problems_of(metricsAllowedCidrs=["10.0.0.300/8"]))
    assert any("metricsAllowedCidrs" in p for p in problems_of(metricsAllowedCidrs="10.0.0.0/8"))


def test_scrape_config_output_has_one_job_per_harbor_component():
    run = run_program(dev_config())
    config = yaml.safe_load(run.outputs["prometheusScrapeConfig"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert sorted(jobs) == sorted(f"harbor-cache-dev-{c}" for c in ("exporter", "core", "registry", "jobservice", "cache"))
    # harbor-cache's own numbers (files/harbor-metrics.py serve): hit rate, probe, upstreams.
    cache = jobs.pop("harbor-cache-dev-cache")
    assert cache["static_configs"][0]["targets"] == [f"harbor.dev.example.com:{operate_files.CACHE_METRICS_PORT}"]
    for name, job in jobs.items():
        assert job["static_configs"][0]["targets"] == ["harbor.dev.example.com:9090"]
        assert job["metrics_path"] == "/metrics"
        component = name.rsplit("-", 1)[1]
        assert job.get("params") == (None if component == "exporter" else {"comp": [component]})
    assert "prometheusScrapeConfig" not in run.secret_outputs


def test_start_keeps_the_exporter_env_file_private(tmp_path):
    """start-harbor.sh against a scratch install: prepare (a stub that writes env files 0644 as
    Harbor's prepare container does) and systemctl are stand-ins; chown and chmod are real."""
    if os.geteuid() != 0:
        unavailable("chown to 10000 needs root (CI runs as root)")
    root, data, bin_dir = tmp_path / "opt", tmp_path / "data", tmp_path / "bin"
    install = root / "harbor"
    install.mkdir(parents=True)
    bin_dir.mkdir()
    (root / "harbor.yml").write_text("hostname: x\n")
    (root / "docker-compose.override.yml").write_text("services: {}\n")
    components = ("core", "registryctl", "db", "jobservice", "exporter")
    prepare = install / "prepare"
    prepare.write_text(
        "#!/bin/sh\nfor c in " + " ".join(components) + "; do mkdir -p common/config/$c; "
        "echo HARBOR_DATABASE_PASSWORD=x > common/config/$c/env; chmod 0644 common/config/$c/env; done\n"
    )
    prepare.chmod(0o755)
    (bin_dir / "sudo").write_text('#!/bin/sh\nshift 2\nexec "$@"\n')  # `sudo -u harbor cmd` -> cmd
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    for stub in ("sudo", "systemctl"):
        (bin_dir / stub).chmod(0o755)
    env = {**os.environ, "HARBOR_ROOT": str(root), "HARBOR_DATA": str(data), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(FILES_DIR / "start-harbor.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    exporter_env = Path(install / "common/config/exporter/env").stat()
    assert stat.S_IMODE(exporter_env.st_mode) == 0o600 and exporter_env.st_uid == 10000


def test_the_cache_metrics_port_opens_with_harbors_and_listens_on_loopback_otherwise():
    group = run_program({**dev_config(), "harbor-cache:metricsAllowedCidrs": ["10.20.0.0/16"]}).one(SG)
    (rule,) = [r for r in group.inputs["ingress"] if r["fromPort"] == operate_files.CACHE_METRICS_PORT]
    assert rule["cidrBlocks"] == ["10.20.0.0/16"] and rule["toPort"] == operate_files.CACHE_METRICS_PORT
    assert [r for r in run_program(dev_config()).one(SG).inputs["ingress"] if r["fromPort"] == 9091] == []
    closed = operate_files.cache_exporter_service(parse())["Service"]["ExecStart"]
    assert closed.endswith(f"serve {operate_files.CACHE_METRICS_PORT} 127.0.0.1")
    opened = operate_files.cache_exporter_service(parse(metricsAllowedCidrs=["10.20.0.0/16"]))["Service"]["ExecStart"]
    assert opened.endswith(f"serve {operate_files.CACHE_METRICS_PORT} 0.0.0.0")


@pytest.mark.parametrize(
    "planted",
    [
        "harbor/common/config/nginx/conf.d",  # nginx mounts common/config/nginx read-write
        "harbor/common/config/registry/config.yml",  # registry and registryctl mount common/config/registry/
        "data/secret/keys",  # core mounts the whole data volume
        "data/secret",
    ],
)
def test_start_refuses_to_run_prepare_through_a_planted_symlink(tmp_path, planted):
    """prepare (root, host / mounted) writes into common/config and <data>/secret, which Harbor's containers
    can write too: with a symlink there, start-harbor.sh stops before prepare and names the link."""
    if os.geteuid() != 0:
        unavailable("install -o 10000 needs root (CI runs as root)")
    root, data, bin_dir, host_etc = tmp_path / "opt", tmp_path / "opt" / "data", tmp_path / "bin", tmp_path / "host-etc"
    install = root / "harbor"
    for directory in (install / "common/config/nginx", install / "common/config/registry", data / "secret", bin_dir, host_etc):
        directory.mkdir(parents=True, exist_ok=True)
    (root / "harbor.yml").write_text("hostname: x\n")
    (root / "docker-compose.override.yml").write_text("services: {}\n")
    ran = tmp_path / "prepare-ran"
    (install / "prepare").write_text(f"#!/bin/sh\ntouch {ran}\nexit 0\n")
    (install / "prepare").chmod(0o755)
    (bin_dir / "sudo").write_text('#!/bin/sh\nshift 2\nexec "$@"\n')
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    for stub in ("sudo", "systemctl"):
        (bin_dir / stub).chmod(0o755)
    link = root / planted
    if link.exists():
        link.rmdir()
    link.symlink_to(host_etc)
    env = {**os.environ, "HARBOR_ROOT": str(root), "HARBOR_DATA": str(data), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(FILES_DIR / "start-harbor.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "refusing to run prepare" in result.stderr and str(link) in result.stderr
    assert not ran.exists(), "prepare did not run"
