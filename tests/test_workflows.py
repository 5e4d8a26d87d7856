"""The GitHub workflows: valid against GitHub's workflow schema (offline, vendored by
check-jsonschema), and wired as the README says: tests, previews with the default branch's policy
pack and a PR comment on pull requests, each stack's preview in its own `<stack>-preview`
environment, `up` per environment behind GitHub environments and only from main; actions pinned by
commit, checkouts without stored credentials, every pip install from a hashed lock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import find_tool, unavailable
from tests.paths import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


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


def all_jobs() -> list[tuple[str, str, dict]]:
    return [(path.name, name, job) for path in sorted(WORKFLOWS.glob("*.yml")) for name, job in load(path.name)["jobs"].items()]


def test_every_action_is_pinned_by_commit_with_its_version():
    """A tag can be moved (or a compromised maintainer can push one); a commit cannot."""
    pins: dict[str, set[str]] = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:- )?uses:\s*(\S+)(.*)$", line)
            if not match:
                continue
            action, rest = match.groups()
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), f"{path.name}: {action} is not pinned by commit"
            assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", rest), f"{path.name}: {action} lacks its `# vX.Y.Z` comment"
            pins.setdefault(action.split("@")[0], set()).add(action.split("@")[1] + rest.strip())
    assert set(pins) == {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
        "aws-actions/configure-aws-credentials",
        "pulumi/actions",
    }
    assert all(len(versions) == 1 for versions in pins.values()), pins


def test_checkouts_keep_no_credentials():
    for workflow, name, job in all_jobs():
        for step in steps_using(job, "actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{workflow}:{name}"


def test_previews_run_in_the_stacks_preview_environment_without_shared_secrets():
    """Each stack's preview gets its secrets only through its own environment: no repository-wide
    passphrase, no secret other than the job's own GITHUB_TOKEN for the comment."""
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert preview["environment"] == "${{ matrix.stack }}-preview"
    (pulumi,) = steps_using(preview, "pulumi/actions")
    assert "env" not in pulumi
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "PASSPHRASE" not in text, path.name
        assert set(re.findall(r"secrets\.(\w+)", text)) <= {"GITHUB_TOKEN"}, path.name


def test_previews_judge_the_pull_request_with_the_base_branchs_policy_pack():
    preview = load("pull-request.yml")["jobs"]["preview"]
    checkouts = steps_using(preview, "actions/checkout")
    (base,) = [step for step in checkouts if step["with"].get("ref") == "${{ github.event.pull_request.base.sha }}"]
    path = base["with"]["path"]
    assert path not in ("", ".", "policy")
    (pulumi,) = steps_using(preview, "pulumi/actions")
    assert pulumi["with"]["policyPacks"] == f"{path}/policy"
    installs = "\n".join(step.get("run", "") for step in preview["steps"])
    assert f"{path}/policy/venv/bin/pip install --require-hashes -r {path}/policy/requirements.lock" in installs
    verify = next(step["run"] for step in preview["steps"] if step.get("name") == "The policy pack is the base commit's")
    assert f"git -C {path} rev-parse HEAD" in verify and "status --porcelain --ignored" in verify
    names = [step.get("name", step.get("uses")) for step in preview["steps"]]
    assert names.index("The policy pack is the base commit's") == names.index("Policy pack of the default branch") + 1
    # The pull request's own policy/ is never the pack, nor its venv.
    assert "policy/venv/bin/pip" not in installs.replace(f"{path}/policy/venv/bin/pip", "")


def test_pull_request_code_never_gets_the_deploy_runner():
    for name, job in load("pull-request.yml")["jobs"].items():
        assert job["runs-on"] == "ubuntu-24.04", name
    assert "DEPLOY_RUNNER" not in (WORKFLOWS / "pull-request.yml").read_text()


def test_deploys_run_only_from_main_and_release_tags():
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["tags"] == ["release-*"]
    job = workflow["jobs"]["up"]
    assert job["if"] == (
        "github.ref == 'refs/heads/main' || (github.event_name == 'push' && startsWith(github.ref, 'refs/tags/release-'))"
    )
    (checkout,) = steps_using(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0
    first_run = next(step for step in job["steps"] if "run" in step)
    assert "merge-base --is-ancestor" in first_run["run"]
    names = [step.get("name") or step["uses"] for step in job["steps"]]
    assert names.index(first_run["name"]) < next(i for i, n in enumerate(names) if n.startswith("pulumi/actions"))


def git(cwd: Path, *args: str) -> str:
    environment = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    environment |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=environment, check=True)
    return result.stdout.strip()


def test_the_ancestry_step_refuses_a_release_tag_off_main(tmp_path):
    """The deploy's own check, run in a clone laid out as actions/checkout with fetch-depth 0 leaves it."""
    if find_tool("git") is None:
        unavailable("git is not installed")
    job = load("deploy.yml")["jobs"]["up"]
    step = next(step for step in job["steps"] if "merge-base --is-ancestor" in step.get("run", ""))
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "commit", "-q", "--allow-empty", "-m", "on main")
    on_main = git(upstream, "rev-parse", "HEAD")
    git(upstream, "checkout", "-q", "-b", "side")
    git(upstream, "commit", "-q", "--allow-empty", "-m", "never merged")
    off_main = git(upstream, "rev-parse", "HEAD")
    git(upstream, "tag", "release-1", off_main)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-checkout", str(upstream), str(clone))

    def run_step(sha: str, ref: str) -> subprocess.CompletedProcess:
        environment = {**os.environ, "GITHUB_SHA": sha, "GITHUB_REF": ref}
        return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=clone, capture_output=True, text=True, env=environment)

    assert run_step(on_main, "refs/heads/main").returncode == 0
    refused = run_step(off_main, "refs/tags/release-1")
    assert refused.returncode != 0 and "is not on main" in refused.stderr


def test_manual_deploys_name_an_environment_and_a_kms_secrets_provider():
    job = load("deploy.yml")["jobs"]["up"]
    check = next(step["run"] for step in job["steps"] if "secretsprovider" in step.get("run", ""))
    assert "awskms://alias/harbor-cache-${STACK}" in check


def pip_lines() -> list[tuple[str, str]]:
    found = []
    for path in [*WORKFLOWS.glob("*.yml"), ROOT / "scripts" / "test.sh", ROOT / "scripts" / "deploy.sh"]:
        for line in path.read_text().splitlines():
            if re.search(r"\bpip\b|pip_", line) and not line.lstrip().startswith("#"):
                found.append((path.name, line))
    return found


def test_every_install_uses_a_hashed_lock():
    lines = pip_lines()
    arrays = {re.match(r"\s*(\w+)=\(", line).group(1): line for _, line in lines if re.match(r"\s*\w+=\(", line)}
    assert arrays and all("--require-hashes" in line for line in arrays.values())
    installs = [(where, line) for where, line in lines if " -r " in line]
    assert {where for where, _ in installs} == {"pull-request.yml", "deploy.yml", "test.sh", "deploy.sh"}
    for where, line in installs:
        assert re.search(r" -r \S+\.lock\b", line), (where, line)
        uses_array = any(f"${{{name}[@]}}" in line for name in arrays)
        assert "--require-hashes" in line or uses_array, (where, line)


def pins(lock: Path) -> dict[str, str]:
    text = lock.read_text()
    found = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M))
    assert len(found) == len(re.findall(r"^[A-Za-z0-9_.-]+==", text, re.M)), f"{lock.name}: a pin without a hash"
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found.items()}


def listed(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= listed(requirements.parent / line[3:].strip())
        elif line:
            names.add(re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", line).group()).lower())
    return names


def test_each_lock_pins_with_hashes_everything_its_list_names():
    """A package added to a requirements list without `scripts/lock.sh` fails here, not in CI's install."""
    for source, lock in [
        ("requirements.txt", "requirements.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
        ("requirements-build.txt", "requirements-build.lock"),
        ("policy/requirements.txt", "policy/requirements.lock"),
    ]:
        missing = listed(ROOT / source) - set(pins(ROOT / lock))
        assert not missing, f"{lock} lacks {sorted(missing)}: run scripts/lock.sh"
    dev = pins(ROOT / "requirements-dev.lock")
    for lock in ("requirements.lock", "policy/requirements.lock"):
        locked = pins(ROOT / lock)
        assert {name: dev.get(name) for name in locked} == locked, f"{lock} and requirements-dev.lock disagree"


def test_the_pulumi_cli_matches_the_locked_sdk():
    sdk = pins(ROOT / "requirements.lock")["pulumi"]
    for workflow, name, job in all_jobs():
        for step in steps_using(job, "pulumi/actions"):
            assert step["with"]["pulumi-version"] == sdk, f"{workflow}:{name}"


def test_fetch_references_takes_pinned_commits_and_refuses_other_bytes(tmp_path):
    """The script against a `curl` that serves the shared reference copies (their git blobs match
    goharbor/harbor 080b0220574c, compose-spec/compose-spec 170098ba07d9 and
    sigstore/sigstore-python 181074f4dc11), then a tampered one."""
    from tests.vm.test_vm_files import reference_file

    sigstore_bundle = "sigstore/rfc8785-0.1.2-py3-none-any.whl.sigstore.json"
    sources = {
        name: reference_file(name)
        for name in ("harbor-v2.15.2-swagger.yaml", "harbor-v2.15.2-harbor.yml.tmpl", "compose-spec.json", sigstore_bundle)
    }
    served = tmp_path / "served"
    served.mkdir()
    by_url = {
        "goharbor/harbor/080b0220574cc853ae1e2946ce7a5610ba855757/api/v2.0/swagger.yaml": "harbor-v2.15.2-swagger.yaml",
        "goharbor/harbor/080b0220574cc853ae1e2946ce7a5610ba855757/make/harbor.yml.tmpl": "harbor-v2.15.2-harbor.yml.tmpl",
        "compose-spec/compose-spec/170098ba07d9f53c383a41bfd4c5166b0a4529a6/schema/compose-spec.json": "compose-spec.json",
        "sigstore/sigstore-python/181074f4dc11b7e85ef44556e25248ef14fcb554/test/assets/bundle_v3_github.whl.sigstore": (
            sigstore_bundle
        ),
    }
    for name, path in sources.items():
        (served / name).parent.mkdir(parents=True, exist_ok=True)
        (served / name).write_bytes(path.read_bytes())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = bin_dir / "curl"
    curl.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        f"by_url = {by_url!r}\n"
        "args = sys.argv[1:]\n"
        "url = args[-1].removeprefix('https://raw.githubusercontent.com/')\n"
        "if url not in by_url:\n"
        "    sys.exit(22)\n"
        f"shutil.copy({str(served)!r} + '/' + by_url[url], args[args.index('--output') + 1])\n"
    )
    curl.chmod(0o755)
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    script = ["bash", str(ROOT / "scripts" / "fetch-references.sh"), str(tmp_path / "out")]
    subprocess.run(script, capture_output=True, text=True, env=environment, check=True)
    for name, path in sources.items():
        assert (tmp_path / "out" / name).read_bytes() == path.read_bytes()
    with (served / "compose-spec.json").open("a") as tampered:
        tampered.write("\n")
    refused = subprocess.run(script, capture_output=True, text=True, env=environment)
    assert refused.returncode != 0 and "does not have sha256" in refused.stderr
