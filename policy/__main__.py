"""Starts the harbor-cache policy pack; the policies themselves live in harbor_policies.py."""

from harbor_policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="harbor-cache", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
