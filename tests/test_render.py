"""The offline renderer (`python -m components.render`) as the README describes it (issue 21 point 7):
it runs with the python a reviewer types, gives each file the mode the VM gives it, shows every
script a remote command sends, takes YAML for lists and objects, and reports each real problem once."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import render
from components.settings.config_reader import SettingsError
from components.settings.settings import parse_settings
from tests.paths import FIXTURE_STACK, ROOT
from tests.standins.pulumi_harness import dev_config, run_program

PREFIX = "harbor-cache:"


def renderer(out: Path, *extra: str, python: list[str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    command = [*(python or [sys.executable]), "-m", "components.render", "--stack", "dev", "--config-file", str(FIXTURE_STACK)]
    environment = {key: value for key, value in os.environ.items() if key != render.REEXEC_MARK}
    return subprocess.run(
        [*command, "--out", str(out), *extra], cwd=cwd, capture_output=True, text=True, env=environment, timeout=300
    )


def mode_of(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def fixture_settings(**overrides):
    raw = {key.removeprefix(PREFIX): value for key, value in dev_config().items() if key.startswith(PREFIX)}
    return parse_settings({**raw, **overrides}, "dev", "eu-central-1")


# --- runs as the README says -------------------------------------------------------------------


def project_copy(tmp_path: Path, with_venv: bool) -> Path:
    """What the renderer reads (components/, files/, Pulumi.yaml), with or without a venv/ beside it."""
    copy = tmp_path / ("with-venv" if with_venv else "without-venv")
    shutil.copytree(ROOT / "components", copy / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "files", copy / "files")
    shutil.copy(ROOT / "Pulumi.yaml", copy / "Pulumi.yaml")
    if with_venv:
        # The venv this suite runs in (a venv's python finds its packages through venv/pyvenv.cfg).
        (copy / "venv").symlink_to(Path(sys.prefix))
    return copy


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the suite runs in the project's venv (scripts/test.sh)")
def test_a_python_without_the_packages_hands_over_to_the_venv(tmp_path):
    # `-S`: no site-packages, the python a reviewer may have on PATH without PyYAML or Pulumi.
    plain = [sys.executable, "-S"]
    copy = project_copy(tmp_path, with_venv=True)
    result = renderer(tmp_path / "out", python=plain, cwd=copy)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "opt/harbor/harbor.yml").exists()


def test_without_a_venv_it_says_which_python_to_use(tmp_path):
    copy = project_copy(tmp_path, with_venv=False)
    result = renderer(tmp_path / "out", python=[sys.executable, "-S"], cwd=copy)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "venv/bin/python -m components.render" in result.stderr and "python3 -m venv venv" in result.stderr
    assert re.search(r"lacks '(yaml|pulumi|tomli_w)'", result.stderr), result.stderr


# --- file modes ------------------------------------------------------------------------------


def modes_the_program_writes(config: dict) -> dict[str, str]:
    """Path -> mode of every file a remote command writes (`install -D -m MODE ... PATH`)."""
    found = {}
    for registration in run_program(config).of_type("command:remote:Command"):
        match = re.search(r"install -D -m (\d{4}) .* /dev/stdin (\S+?)'?$", registration.inputs["create"])
        if match:
            found[match.group(2).strip("'")] = match.group(1)
    return found


@pytest.mark.parametrize(
    "overrides",
    [{}, {"replicas": 3}, {"storage": "s3"}],
    ids=["one VM", "HA node", "s3 (IMDS guard and relay)"],
)
def test_each_file_gets_the_mode_the_remote_commands_give_it(overrides):
    config = {**dev_config(), **{PREFIX + key: value for key, value in overrides.items()}}
    written = modes_the_program_writes(config)
    settings = fixture_settings(**overrides)
    files = render.render_all(settings)
    modes = render.render_modes(settings, files)
    compared = {path: modes[path.lstrip("/")] for path in written if path.lstrip("/") in files}
    assert compared == {path: written[path] for path in compared}
    # Every file of the install and the operate steps is rendered; HA's shared files too.
    assert len(compared) >= (12 if overrides else 9), sorted(written)
    assert modes["opt/harbor/harbor.yml"] == "0600"
    if overrides.get("storage") == "s3":
        assert "0755" in {modes[path.lstrip("/")] for path in compared if "relay" in path}, "the relay's script"


def test_a_password_set_on_the_command_line_lands_in_a_file_only_its_owner_reads(tmp_path):
    out = tmp_path / "out"
    # A render from before, with the old 0644: writing again must not leave the new content readable.
    (out / "opt/harbor").mkdir(parents=True)
    (out / "opt/harbor/harbor.yml").write_text("old")
    (out / "opt/harbor/harbor.yml").chmod(0o644)
    result = renderer(out, "--set", "adminPassword=Set-By-Reviewer-1")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((out / "opt/harbor/harbor.yml").read_text())["harbor_admin_password"] == "Set-By-Reviewer-1"
    assert mode_of(out / "opt/harbor/harbor.yml") == "0600"
    assert mode_of(out / "var/lib/cloud/instance/user-data.txt") == "0600"
    assert mode_of(out / "etc/systemd/system/harbor.service") == "0644"
    assert mode_of(out / "opt/harbor/bin/harbor-metrics.py") == "0755"
    assert mode_of(out / "remote-commands/install-harbor.sh") == "0755"
    assert mode_of(out / "nodes/k3s/registries.yaml") == "0644"


# --- every remote script ---------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{}, {"replicas": 3}], ids=["one VM", "HA"])
def test_every_script_a_remote_command_sends_is_rendered(overrides):
    config = {**dev_config(), **{PREFIX + key: value for key, value in overrides.items()}}
    sent = {r.inputs["stdin"] for r in run_program(config).of_type("command:remote:Command") if r.inputs.get("stdin")}
    scripts = {text for text in sent if text.startswith("#!")}
    rendered = set(render.render_all(fixture_settings(**overrides)).values())
    missing = [text.splitlines()[1:3] for text in scripts - rendered]
    assert not missing, f"scripts sent on stdin that the renderer does not show: {missing}"
    rendered_paths = render.render_all(fixture_settings())
    names = {path.removeprefix("remote-commands/") for path in rendered_paths if path.startswith("remote-commands/")}
    assert {"enable-timers.sh", "acme-account-uri.sh"} <= names


# --- YAML for lists and objects --------------------------------------------------------------


def test_lists_and_objects_are_taken_as_yaml(tmp_path):
    upstream = "[{name: mirror, type: docker-registry, url: 'https://registry.corp.io', project: mirror-proxy}]"
    result = renderer(
        tmp_path / "out",
        "--set",
        "allowedCidrs=[10.0.0.0/8, 192.168.7.1/32]",
        "--set",
        f"upstreams={upstream}",
        "--set",
        "tags=- not an object",
    )
    # tags as a YAML list: one problem, about tags, and nothing about JSON.
    assert result.returncode == 2 and result.stderr.count("\n  - ") == 1 and "harbor-cache:tags" in result.stderr, result.stderr
    result = renderer(tmp_path / "out", "--set", "allowedCidrs=[10.0.0.0/8, 192.168.7.1/32]", "--set", f"upstreams={upstream}")
    assert result.returncode == 0, result.stderr
    hosts = sorted(p.name for p in (tmp_path / "out/nodes/containerd/certs.d").iterdir())
    assert hosts == ["registry.corp.io"]
    assert render.parse_override('metricsAllowedCidrs=["10.1.0.0/16"]') == ("metricsAllowedCidrs", ["10.1.0.0/16"])
    assert render.parse_override("instanceType=m7i.large") == ("instanceType", "m7i.large")
    assert render.parse_override("acmeStaging=true") == ("acmeStaging", "true"), "scalars stay strings, as the engine gives them"


def test_a_value_that_is_not_yaml_is_one_clear_error(tmp_path):
    result = renderer(tmp_path / "out", "--set", "allowedCidrs=[10.0.0.0/8, 192.168.7.1/32")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("--set allowedCidrs: the value is not valid YAML") and "line 1" in result.stderr
    assert "is required" not in result.stderr


# --- one error per real problem --------------------------------------------------------------


def problems(**overrides) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        fixture_settings(**overrides)
    return [str(problem) for problem in caught.value.problems]


def test_a_bad_default_quota_is_one_problem_not_one_per_upstream():
    assert problems(defaultStorageQuotaGb=0) == [
        "harbor-cache:defaultStorageQuotaGb: 0 is not accepted; use -1 (unlimited) or a positive whole number of GiB"
    ]
    # A quota an upstream sets itself is still checked there.
    upstream = {"name": "hub", "type": "docker-hub", "url": "https://hub.docker.com", "storageQuotaGb": 0}
    (problem,) = problems(upstreams=[upstream])
    assert problem.startswith("harbor-cache:upstreams[0].storageQuotaGb: 0")


def test_a_list_given_as_a_plain_string_is_one_problem_with_the_way_to_set_it():
    (problem,) = problems(allowedCidrs="10.0.0.0/8, 192.168.7.1/32")
    assert problem.startswith("harbor-cache:allowedCidrs: '10.0.0.0/8, 192.168.7.1/32' is not valid JSON")
    assert "--path 'allowedCidrs[0]'" in problem
