"""docs/operate.md's restore runbooks as an operator runs them (issue 19): "the VM is gone" refreshes only
what AWS holds (a plain `pulumi refresh` reads Harbor's resources through the dead Harbor's API and
fails), and its URN filter finds exactly the instance, attachment and EIP association the program
registers, no Harbor resource."""

from __future__ import annotations

import re

from tests.paths import ROOT
from tests.standins.pulumi_harness import dev_config, run_program


def vm_gone_block() -> str:
    readme = (ROOT / "docs" / "operate.md").read_text()
    section = readme[readme.index("**The VM is gone**") :]
    return section[section.index("```bash") : section.index("```", section.index("```bash") + 7)]


def test_the_vm_gone_runbook_refreshes_only_aws_resources():
    block = vm_gone_block()
    refreshes = [line for line in block.splitlines() if line.strip().startswith("pulumi refresh")]
    assert refreshes and all("--target" in line for line in refreshes), "never a plain pulumi refresh against a dead Harbor"
    pattern = re.search(r"grep -oE '([^']+)'", block)[1]
    run = run_program(dev_config())
    # URNs as the engine makes them: urn:pulumi:<stack>::<project>::<parent types joined by $>$<type>::<name>.
    urns = [r.urn for r in run.registrations]
    assert any("$aws:ec2/instance:Instance::" in urn for urn in urns), urns[:3]
    found = {match[0].rsplit("::", 1)[1] for urn in urns if (match := re.search(pattern, urn))}
    assert found == {"harbor-vm-instance", "harbor-vm-data-attachment", "harbor-vm-eip-association"}
    assert not any("dynamic/harbor" in urn for urn in urns if re.search(pattern, urn))
