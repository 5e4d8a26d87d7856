"""The node configs people ask for, each checked against the real thing's own definition:

- k3s/RKE2 fail closed: the config key `disable-default-registry-endpoint` follows mirrorFailClosed;
- Talos 1.12+ RegistryMirrorConfig / RegistryAuthConfig documents and the legacy `machine.registries`
  patch (deprecated since 1.12 but still read), validated against Talos's own config JSON schemas
  (tests/standins/talos_schema.py);
- the GitLab runner config.toml snippet and CI variables;
- the hosts.toml ConfigMap + DaemonSet, validated against Kubernetes' own resource schemas
  (kubernetes-validate, strict: an unknown field is an error); its copy script runs for real in
  tests/nodes/test_containerd_mirror.py, where containerd pulls through what it wrote.
"""

from __future__ import annotations

import json
import tomllib

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.nodes.credentials import pull_credential_outputs
from components.nodes.daemonset import NAME, config_map_key, render_hosts_toml_daemonset
from components.nodes.gitlab import gitlab_ci_variables, render_gitlab_runner_config_toml
from components.nodes.k3s import render_k3s_config_yaml
from components.nodes.mirrors import MirrorOptions, PullCredential
from components.nodes.outputs import node_files, stack_outputs
from components.nodes.talos import render_talos_patch, render_talos_registry_mirror_configs
from components.settings.upstreams import Upstream
from tests.settings.test_settings import parse
from tests.standins.talos_schema import talos_schema, talos_yaml_fields

HOST = "harbor.platform.corp-cache.io"
CREDENTIAL = PullCredential("robot$harbor-cache-pull", "s3cret-Robot-Token")
PRIVATE_REGISTRY = Upstream(
    name="corp.registry", type="docker-registry", url="https://registry.corp:5000", project="corp-proxy",
    registry_host="registry.corp:5000",
)  # fmt: skip


@pytest.fixture(scope="module")
def upstreams():
    return (*parse().upstreams, PRIVATE_REGISTRY)


@pytest.fixture(scope="module")
def schema():
    return talos_schema()


def test_k3s_fails_closed_only_with_the_config_key():
    assert yaml.safe_load(render_k3s_config_yaml(MirrorOptions(fail_closed=True))) == {"disable-default-registry-endpoint": True}
    assert yaml.safe_load(render_k3s_config_yaml(MirrorOptions())) == {"disable-default-registry-endpoint": False}


def test_talos_registry_mirror_configs_are_valid_talos_documents(schema, upstreams):
    for options in (MirrorOptions(), MirrorOptions(fail_closed=True)):
        documents = list(yaml.safe_load_all(render_talos_registry_mirror_configs(HOST, upstreams, options)))
        assert [d["name"] for d in documents] == [u.registry_host for u in upstreams]
        for document in documents:
            # The root schema is a oneOf over every document kind Talos accepts.
            jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
            assert document["kind"] == "RegistryMirrorConfig" and document["skipFallback"] is options.fail_closed
        docker = documents[0]
        assert docker["endpoints"] == [{"url": f"https://{HOST}/v2/dockerhub-proxy", "overridePath": True}]


def test_the_schema_refuses_what_talos_refuses(schema, upstreams):
    """The check has teeth: a misspelt field or a missing name fail against Talos's schema."""
    document = next(yaml.safe_load_all(render_talos_registry_mirror_configs(HOST, upstreams)))
    for broken in (
        {**document, "skipFallBack": True},
        {key: value for key, value in document.items() if key != "name"},
        {**document, "endpoints": [{"url": "ftp://x", "overridePath": True}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)


def test_the_legacy_talos_patch_uses_only_fields_talos_reads(upstreams):
    """machine.registries (deprecated in 1.12, still decoded): every key is a field of Talos's own
    v1alpha1 types (RegistriesConfig, RegistryMirrorConfig, RegistryConfig, RegistryAuthConfig)."""
    patch = yaml.safe_load(render_talos_patch(HOST, upstreams, MirrorOptions(fail_closed=True)))
    registries = patch["machine"]["registries"]
    assert set(registries) <= talos_yaml_fields("RegistriesConfig")
    mirror_fields = talos_yaml_fields("RegistryMirrorConfig")
    assert mirror_fields >= {"endpoints", "overridePath", "skipFallback"}
    for mirror in registries["mirrors"].values():
        assert set(mirror) <= mirror_fields and mirror["skipFallback"] is True
    auth = yaml.safe_load(pull_credential_outputs(HOST, upstreams, CREDENTIAL)["talosAuthPatch"])["machine"]["registries"]
    assert set(auth) <= talos_yaml_fields("RegistriesConfig")
    assert set(auth["config"][HOST]) <= talos_yaml_fields("RegistryConfig")
    assert set(auth["config"][HOST]["auth"]) <= talos_yaml_fields("RegistryAuthConfig")


def test_talos_registry_auth_config_is_a_valid_talos_document(schema, upstreams):
    document = yaml.safe_load(pull_credential_outputs(HOST, upstreams, CREDENTIAL)["talosRegistryAuthConfig"])
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    assert document == {
        "apiVersion": "v1alpha1",
        "kind": "RegistryAuthConfig",
        "name": HOST,
        "username": CREDENTIAL.username,
        "password": CREDENTIAL.password,
    }


def test_gitlab_ci_variables_name_each_project(upstreams):
    variables = gitlab_ci_variables(HOST, upstreams)
    assert variables["CACHE_PREFIX_DOCKERHUB"] == f"{HOST}/dockerhub-proxy"
    assert variables["CACHE_PREFIX_CORP_REGISTRY"] == f"{HOST}/corp-proxy"
    assert all(key.replace("_", "").isalnum() and key.isupper() for key in variables)
    twin = Upstream(
        name="corp-registry", type="docker-registry", url="https://r2.corp", project="r2-proxy", registry_host="r2.corp"
    )
    assert gitlab_ci_variables(HOST, (PRIVATE_REGISTRY, twin)) == {
        "CACHE_PREFIX_CORP_REGISTRY": f"{HOST}/corp-proxy",
        "CACHE_PREFIX_CORP_REGISTRY_2": f"{HOST}/r2-proxy",
    }


def test_gitlab_runner_snippet_is_a_docker_executor_with_the_prefixes(upstreams):
    config = tomllib.loads(render_gitlab_runner_config_toml(HOST, upstreams))
    (runner,) = config["runners"]
    assert runner["executor"] == "docker"
    assert runner["docker"] == {"image": f"{HOST}/dockerhub-proxy/library/alpine:3.20"}
    assert f"CACHE_PREFIX_GHCR={HOST}/ghcr-proxy" in runner["environment"]
    assert not [e for e in runner["environment"] if e.startswith("DOCKER_AUTH_CONFIG=")], "no login in the plain output"
    private = tomllib.loads(pull_credential_outputs(HOST, upstreams, CREDENTIAL)["gitlabRunnerConfigToml"])
    (auth,) = [e for e in private["runners"][0]["environment"] if e.startswith("DOCKER_AUTH_CONFIG=")]
    assert json.loads(auth.removeprefix("DOCKER_AUTH_CONFIG=")) == {"auths": {HOST: {"auth": CREDENTIAL.basic}}}


def test_the_daemonset_manifest_is_valid_kubernetes(upstreams):
    documents = list(yaml.safe_load_all(render_hosts_toml_daemonset(HOST, upstreams, MirrorOptions(fail_closed=True))))
    assert [d["kind"] for d in documents] == ["ConfigMap", "DaemonSet"]
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    config_map, daemon_set = documents
    # Every upstream's hosts.toml arrives byte for byte, under a key Kubernetes accepts (host:port too).
    assert config_map["data"][config_map_key("registry.corp:5000")].startswith('server = "https://harbor')
    volume = next(v for v in daemon_set["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == NAME
    assert {i["path"] for i in volume["configMap"]["items"]} == {f"{u.registry_host}/hosts.toml" for u in upstreams}
    host_path = next(v for v in daemon_set["spec"]["template"]["spec"]["volumes"] if "hostPath" in v)
    assert host_path["hostPath"] == {"path": "/etc/containerd/certs.d", "type": "DirectoryOrCreate"}


def test_the_kubernetes_check_has_teeth(upstreams):
    daemon_set = list(yaml.safe_load_all(render_hosts_toml_daemonset(HOST, upstreams)))[1]
    misspelt = json.loads(json.dumps(daemon_set))
    misspelt["spec"]["template"]["spec"]["tolleration"] = misspelt["spec"]["template"]["spec"].pop("tolerations")
    without_selector = json.loads(json.dumps(daemon_set))
    del without_selector["spec"]["selector"]
    for broken in (misspelt, without_selector):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_the_new_configs_are_stack_outputs_and_rendered_files(upstreams):
    outputs = stack_outputs(HOST, upstreams, MirrorOptions(fail_closed=True))
    assert outputs["k3sConfigYaml"] == render_k3s_config_yaml(MirrorOptions(fail_closed=True))
    assert outputs["talosRegistryMirrorConfig"] == render_talos_registry_mirror_configs(
        HOST, upstreams, MirrorOptions(fail_closed=True)
    )
    assert outputs["gitlabCiVariables"] == gitlab_ci_variables(HOST, upstreams)
    assert outputs["containerdHostsDaemonSet"] == render_hosts_toml_daemonset(HOST, upstreams, MirrorOptions(fail_closed=True))
    files = node_files(HOST, upstreams)
    for path in (
        "nodes/k3s/config.yaml",
        "nodes/talos/registry-mirror-configs.yaml",
        "nodes/kubernetes/hosts-toml-daemonset.yaml",
        "nodes/gitlab/runner-config.toml",
    ):
        assert path in files
