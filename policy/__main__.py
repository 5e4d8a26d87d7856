"""Starts the harbor-cache policy pack; the policies themselves live in harbor_policies.py."""

from pulumi_policy import EnforcementLevel, PolicyPack

from harbor_policies import POLICIES

PolicyPack(name="harbor-cache", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
