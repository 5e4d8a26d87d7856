"""Configuration keys outside this project's namespace.

The engine hands the program every key of the stack, whatever its namespace, and the CLI accepts any
namespace: `harbor_cache:hostname` is stored and then ignored by everyone. Only this project's and
the providers' namespaces mean something; anything else is refused with the key it was likely
meant to be. Of the AWS provider's own keys, those that give it credentials are refused too: only
the provider would use them (below).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from components.settings.config_reader import PROJECT, ConfigReader

# This project, the providers it uses (requirements.txt: pulumi-aws, -command, -random, -tls) and
# the engine's own (`pulumi:tags`, `pulumi:disable-default-providers`).
KNOWN_NAMESPACES = (PROJECT, "aws", "command", "random", "tls", "pulumi")
# The AWS provider's credential keys (pulumi_aws/config/vars.py). The host-key step reads the VM's
# console through boto3 on the machine that runs `pulumi up` (components/aws/host_key_provider.py,
# ec2_client), which takes credentials from boto3's default chain (environment, AWS_PROFILE, SSO)
# and never sees these: it would run as another identity, or none, after the instance exists.
PROVIDER_ONLY_CREDENTIAL_KEYS = {
    "aws:profile": "export AWS_PROFILE={value} instead",
    "aws:accessKey": "export AWS_ACCESS_KEY_ID (and AWS_SECRET_ACCESS_KEY) instead",
    "aws:secretKey": "export AWS_SECRET_ACCESS_KEY instead",
    "aws:token": "export AWS_SESSION_TOKEN instead",
    "aws:assumeRole": "assume the role before `pulumi up` (a profile with role_arn and AWS_PROFILE) instead",
    "aws:assumeRoles": "assume the role before `pulumi up` (a profile with role_arn and AWS_PROFILE) instead",
    "aws:assumeRoleWithWebIdentity": "export AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE instead",
    "aws:sharedCredentialsFiles": "export AWS_SHARED_CREDENTIALS_FILE instead",
    "aws:sharedConfigFiles": "export AWS_CONFIG_FILE instead",
    "aws:ec2MetadataServiceEndpoint": "export AWS_EC2_METADATA_SERVICE_ENDPOINT instead",
    "aws:ec2MetadataServiceEndpointMode": "export AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE instead",
}
# Shown by name only: their values are or may hold credentials (a web identity token, an external id).
SECRET_PROVIDER_KEYS = (
    "aws:accessKey",
    "aws:secretKey",
    "aws:token",
    "aws:assumeRole",
    "aws:assumeRoles",
    "aws:assumeRoleWithWebIdentity",
)
# The policy pack refuses every other key of the default AWS provider (review 22f L2: policy/resource_checks.py
# AWS_PROVIDER_ALLOWED_KEYS, which adds the engine's `version`; tests/policy/test_bypass_provider.py keeps the two
# equal), so the settings refuse them first, with the key and the fix. These change neither who the provider is nor
# where its requests go; the last five only when off (empty or false), ignoreTags only without the program's keys.
AWS_PROVIDER_OFF_ONLY_KEYS = ("endpoints", "insecure", "customCaBundle", "httpProxy", "httpsProxy")
AWS_PROVIDER_SETTABLE_KEYS = frozenset(
    {
        "region",
        "skipCredentialsValidation",
        "skipRegionValidation",
        "skipMetadataApiCheck",
        "skipRequestingAccountId",
        "allowedAccountIds",
        "forbiddenAccountIds",
        "maxRetries",
        "retryMode",
        "tokenBucketRateLimiterCapacity",
        "stsRegion",
        "useFipsEndpoint",
        "useDualstackEndpoint",
        "s3UsePathStyle",
        "s3UsEast1RegionalEndpoint",
        "userAgents",
        "noProxy",
        "tagPolicyCompliance",
        "defaultTags",
        "ignoreTags",
        *AWS_PROVIDER_OFF_ONLY_KEYS,
    }
)
PROGRAM_TAG_PREFIX = f"{PROJECT}:"


def _off(value: Any) -> bool:
    """Unset, empty or false, as the CLI stores it (JSON text: "false", "[]") or parsed."""
    if isinstance(value, str):
        return value.strip().lower() in ("", "[]", "{}", "null", "false")
    return value in (None, False, [], {})


def _ignores_program_tags(value: Any) -> bool:
    """aws:ignoreTags ({keys, keyPrefixes}) would make the provider drop a tag key starting with the program's prefix
    (terraform-provider-aws KeyValueTags.IgnoreConfig: exact keys, strings.HasPrefix prefixes; compared without case
    here, as the policy pack does); a value of another shape counts as dropping them."""
    if _off(value):
        return False
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return True
    if not isinstance(value, Mapping):
        return True
    for field in ("keys", "keyPrefixes"):
        items = value.get(field) or []
        if not isinstance(items, (list, tuple)):
            return True
        for item in items:
            text = str(item).lower()
            if text.startswith(PROGRAM_TAG_PREFIX) or (field == "keyPrefixes" and PROGRAM_TAG_PREFIX.startswith(text)):
                return True
    return False


def _refuse_aws_provider_key(reader: ConfigReader, key: str, value: Any) -> None:
    name = key.removeprefix("aws:")
    if name in AWS_PROVIDER_OFF_ONLY_KEYS and not _off(value):
        shown = f"is set ({value!r})" if name in ("insecure", "endpoints", "customCaBundle") else "is set"
        reader.fail(
            key,
            f"{shown}: the AWS provider would send its requests (and their signatures) elsewhere, which the policy "
            f"pack refuses; remove it (`pulumi config rm {key}`)",
        )
    elif name == "ignoreTags" and _ignores_program_tags(value):
        reader.fail(
            key,
            f"{value!r}: the AWS provider would stop managing the program's {PROGRAM_TAG_PREFIX!r} tags (a tag changed "
            f"or removed outside is never put back; snapshots and policy exemptions read them), which the policy "
            f"pack refuses; remove those keys and prefixes (or "
            f"`pulumi config rm {key}`)",
        )
    elif name not in AWS_PROVIDER_SETTABLE_KEYS and not _off(value):
        reader.fail(
            key,
            "is set, but the policy pack allows only the AWS provider settings that change neither its identity nor "
            f"where its requests go ({', '.join(sorted(AWS_PROVIDER_SETTABLE_KEYS))}); remove it (`pulumi config rm {key}`)",
        )


def refuse_foreign_keys(reader: ConfigReader, foreign: Mapping[str, Any], project_keys: tuple[str, ...]) -> None:
    """`foreign`: every key outside the project's namespace, as namespace:key, with its value."""
    for key in sorted(foreign):
        namespace, _, name = key.partition(":")
        if key in PROVIDER_ONLY_CREDENTIAL_KEYS:
            shown = "is set" if key in SECRET_PROVIDER_KEYS else f"is set ({foreign[key]!r})"
            fix = PROVIDER_ONLY_CREDENTIAL_KEYS[key].format(value=foreign[key])
            reader.fail(
                key,
                f"{shown}, but only the AWS provider reads it: the host-key step (boto3, ec2:GetConsoleOutput) takes "
                f"credentials from the environment and would run as another identity or none, after the instance "
                f"exists. Remove it (`pulumi config rm {key}`) and {fix}",
            )
        elif namespace == "aws":
            _refuse_aws_provider_key(reader, key, foreign[key])
        elif namespace not in KNOWN_NAMESPACES:
            close = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1, cutoff=0.6)
            meant = f"{close[0]}:{name}" if close else ""
            if close and close[0] == PROJECT and name not in project_keys:
                meant = f"{PROJECT}:{(difflib.get_close_matches(name, project_keys, n=1) or [name])[0]}"
            hint = f"; did you mean {meant!r}?" if meant else ""
            reader.fail(
                key,
                f"namespace {namespace!r} is neither this project's ({PROJECT!r}) nor a provider's "
                f"({', '.join(KNOWN_NAMESPACES[1:])}), so nothing would read this value{hint}",
            )
