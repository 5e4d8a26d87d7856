"""Readers of single keys whose checks need more than a pattern: CIDR lists, the KMS key, the quota,
tags, and secrets given in plain text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

from components.settings.config_reader import ConfigReader
from components.settings.validators import (
    KMS_KEY_ARN_RE,
    validate_cidr,
    world_families,
)

SECRET_KEYS = frozenset({"adminPassword", "upstreamCredentials"})


def read_cidr_list(reader: ConfigReader, key: str, allow_world: bool, world_hint: str) -> tuple[str, ...]:
    value = reader.structured(key, None)
    if value is None or value == []:
        reader.fail(key, "is required: a non-empty list of CIDRs such as ['203.0.113.0/24']")
        return ()
    if not isinstance(value, list):
        reader.fail(key, f"{value!r} is not a list of CIDRs")
        return ()
    valid = []
    for item in value:
        problem = validate_cidr(item)
        if problem:
            reader.fail(key, f"{item!r} {problem}")
        else:
            valid.append(item)
    if not allow_world:
        for family in world_families(valid):
            reader.fail(key, f"{valid!r} open the port to the whole internet ({family}, counting how they add up); {world_hint}")
    return tuple(value)


def read_kms_key_arn(reader: ConfigReader, region: str) -> str:
    arn = reader.string("kmsKeyArn")
    match = KMS_KEY_ARN_RE.match(arn)
    if arn and not match:
        reader.fail(
            "kmsKeyArn",
            f"{arn!r} is not a KMS key ARN; accepted: arn:aws:kms:<region>:<account>:key/<key id> (not an alias), "
            "or empty for the account's default EBS key",
        )
    elif arn and region and match.group(1) != region:
        reader.fail("kmsKeyArn", f"{arn!r} is in region {match.group(1)!r}; EBS needs a key in {region!r}")
    return arn


def read_default_quota_gb(reader: ConfigReader) -> int:
    quota = reader.integer("defaultStorageQuotaGb", -1, 1024 * 1024)
    if quota == 0:
        reader.fail("defaultStorageQuotaGb", "0 is not accepted; use -1 (unlimited) or a positive whole number of GiB")
    return quota


def refuse_plain_secrets(reader: ConfigReader, plain_keys: Collection[str]) -> None:
    """Secret keys given as plain config land in git (the stack file) and in the rendered-files artifact."""
    for key in sorted(SECRET_KEYS & set(plain_keys)):
        if key in reader.raw:
            how = (
                "pulumi config set --secret adminPassword"
                if key == "adminPassword"
                else "pulumi config set --secret --path 'upstreamCredentials.<upstream>.password'"
            )
            reader.fail(key, f"is set as plain config (value not shown); store it encrypted: `{how}`")


# Every tag the program sets itself starts with this (components/aws/tagging.py); user tags may not.
PROGRAM_TAG_PREFIX = "harbor-cache:"


def is_aws_tag_text(text: str) -> bool:
    """IAM's tag rule (TagKey/TagValue `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*`), the strictest of the services tagged
    here; EC2, DLM and CloudWatch accept at least as much."""
    return all(unicodedata.category(char)[0] in "LNZ" or char in "_.:/=+-@" for char in text)


def read_tags(reader: ConfigReader) -> dict[str, str]:
    value = reader.structured("tags", {})
    if not isinstance(value, dict):
        reader.fail("tags", f"{value!r} is not an object of string keys and values")
        return {}
    for key, item in value.items():
        if not isinstance(item, str) or not 1 <= len(key) <= 128 or len(item) > 256 or key.lower().startswith("aws:"):
            reader.fail(f"tags.{key}", f"{item!r}: keys 1..128 chars not starting with 'aws:', string values up to 256 chars")
        elif key.lower().startswith(PROGRAM_TAG_PREFIX):
            # The program's own tags (components/aws/tagging.py) steer DLM and the policy pack's exemptions:
            # from `tags` they would land on every resource of the stack.
            reader.fail(
                f"tags.{key}",
                f"{item!r}: keys starting with {PROGRAM_TAG_PREFIX!r} are the program's own (snapshots, policy "
                "exemptions); use the settings that set them (allowPublicAccess) or another key",
            )
        elif not (is_aws_tag_text(key) and is_aws_tag_text(item)):
            reader.fail(
                f"tags.{key}",
                f"{item!r}: IAM refuses tags with other characters than letters, digits, spaces and _ . : / = + - @",
            )
    return {str(k): str(v) for k, v in value.items()}
