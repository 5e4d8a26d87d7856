"""The GitHub workflows: valid against GitHub's workflow schema (offline, vendored by
check-jsonschema), and wired as the README says: tests, previews with the policy pack and a PR
comment on pull requests, `up` per environment behind GitHub environments."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.conftest import find_tool, unavailable

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on` key as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps_using(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(action)]


def test_workflows_validate_against_githubs_schema():
    tool = find_tool("check-jsonschema")
    if tool is None:
        unavailable("check-jsonschema is not installed (requirements-dev.txt)")
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    assert len(files) == 2
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_requests_are_tested_then_previewed_with_policies_and_a_comment():
    workflow = load("pull-request.yml")
    assert "pull_request" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    test_job, preview = workflow["jobs"]["test"], workflow["jobs"]["preview"]
    commands = "\n".join(step.get("run", "") for step in test_job["steps"])
    assert "scripts/test.sh" in commands and "check-jsonschema --builtin-schema vendor.github-workflows" in commands
    assert preview["needs"] == "test"
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write", "id-token": "write"}
    (pulumi,) = steps_using(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert preview["strategy"]["matrix"]["stack"] == sorted(
        p.name.split(".")[1] for p in WORKFLOWS.parents[1].glob("Pulumi.*.yaml")
    )
    (aws,) = steps_using(preview, "aws-actions/configure-aws-credentials")
    assert "role-to-assume" in aws["with"] and "aws-access-key-id" not in aws["with"]
    (artifact,) = steps_using(preview, "actions/upload-artifact")
    render = next(step["run"] for step in preview["steps"] if "components.render" in step.get("run", ""))
    assert "--out" in render and artifact["with"]["path"].startswith("render-out/")


def test_main_deploys_dev_and_other_stacks_go_through_environments():
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in workflow["on"]
    job = workflow["jobs"]["up"]
    assert "'dev'" in job["environment"] and "inputs.stack" in job["environment"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["concurrency"]["cancel-in-progress"] is False
    (pulumi,) = steps_using(job, "pulumi/actions")
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["policyPacks"] == "policy"
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-secret-access-key" not in text
