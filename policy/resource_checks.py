"""One check per resource type the program creates: each takes a `Review` of one resource and adds
what is wrong with it, every message saying what to change. The table of types is `ALLOWED` in
harbor_policies.py."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reading import (
    PROGRAM_COMPONENTS,
    PROJECT,
    Resource,
    Review,
    Undecidable,
    Urn,
    Violation,
    _no_duplicate_keys,
    action_matches,
    as_list,
    is_unknown,
    known,
    network,
    number,
    statements,
    too_wide,
)

PROGRAM_TAG_PREFIX = "harbor-cache:"
PUBLIC_ACCESS_TAG = "harbor-cache:allow-public-access"
NODE_SCRATCH_TAG = "harbor-cache:node-scratch"
# Traefik runs on the host network; containers one hop away must not reach IMDS. In every mode: the
# s3 registry gets its credentials from the host's relay (components/vm/imds_relay.py), no exception.
MAX_IMDS_HOP_LIMIT = 1
# TLS 1.2 or 1.3 minimum, TLS 1.3 offered: ELB's TLS13-1-2-* and TLS13-1-3-* policies (ELB User Guide,
# "Security policies for your Application Load Balancer"). Unset, an HTTPS listener gets
# ELBSecurityPolicy-2016-08, which still speaks TLS 1.0.
TLS_POLICY_RE = re.compile(r"ELBSecurityPolicy-TLS13-1-[23]-[\w-]+")
# Harbor nodes behind the load balancer serve plain HTTP here (harbor.yml http.port).
NODE_HTTP_PORT = 8080
METRICS_PORT = 9090
# harbor-cache's own metrics for Prometheus (harbor-cache-exporter.service), opened like Harbor's.
CACHE_METRICS_PORT = 9091
DATABASE_PORTS = (5432, 6379)
# The ports the program's security groups admit, and from what.
ADDRESS_PORTS = (22, METRICS_PORT, CACHE_METRICS_PORT)  # address blocks, never all of them
WEB_PORTS = (443, 80)  # address blocks; all of them only on the program's web group with allowPublicAccess
GROUP_ONLY_PORTS = (NODE_HTTP_PORT, *DATABASE_PORTS)  # other security groups only

# The one permission the instance role holds: Traefik's DNS-01 challenge through lego's route53
# provider. Spelled exactly: IAM matches actions case-insensitively and with wildcards, so
# `route53:changeresourcerecordsets` or `route53:Change*` would grant it (or more) unnoticed.
DNS01_CHANGE = "route53:ChangeResourceRecordSets"
# Traefik is given the zone id (AWS_HOSTED_ZONE_ID), so ListHostedZonesByName is not part of the design.
DNS01_LIST = "route53:ListResourceRecordSets"
DNS01_ACTIONS = (DNS01_CHANGE, DNS01_LIST, "route53:GetChange")
DNS01_NAMES_KEY = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
DNS01_TYPES_KEY = "route53:ChangeResourceRecordSetsRecordTypes"
ACME_PREFIX = "_acme-challenge."
HOSTED_ZONE_ARN_RE = re.compile(r"arn:aws[\w-]*:route53:::hostedzone/[A-Z0-9]{1,32}")
# The VM's metrics reporter (components/aws/alarms.py) may put metrics into its stack's namespace only
# (components/vm/operate_files.py metrics_namespace): the stack is the one in the policy's URN.
METRICS_ACTION = "cloudwatch:PutMetricData"
# The reporter's HoursSinceSnapshot (issue 19): read-only; EC2 has no resource-level permission for it.
SNAPSHOT_READ_ACTION = "ec2:DescribeSnapshots"
# The reporter's ConfirmedAlarmSubscribers (issue 19): read-only, on one topic (SNS has the resource-level
# permission: Service Authorization Reference, ListSubscriptionsByTopic, resource type topic*).
SUBSCRIBERS_READ_ACTION = "sns:ListSubscriptionsByTopic"
TOPIC_ARN_RE = re.compile(r"arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+")
METRICS_NAMESPACE_PREFIX = "HarborCache"
# The only managed policy the program attaches: AWS's service policy for the DLM snapshot role.
DLM_SERVICE_POLICY = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"
EC2_SERVICE, DLM_SERVICE = "ec2.amazonaws.com", "dlm.amazonaws.com"
# storage: s3 (issue 13): the registry's actions from distribution's s3 driver docs
# (docs/content/storage-drivers/s3.md, "S3 permission scopes"), only on the program's bucket.
REGISTRY_S3_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
REGISTRY_S3_OBJECT_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
)
BUCKET_ARN_RE = re.compile(r"arn:aws[\w-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")
# The program's bucket is named by the AWS provider from bucket_prefix (components/aws/storage.py): at `up`,
# where the stack check comes after the change, the registry policy's resource check at least refuses a
# bucket not named so (the Pulumi state bucket, a data bucket); which of those: the stack check at preview, the
# bucket's tags before the step at up (aws_lookups.py).
PROGRAM_BUCKET_PREFIX = "harbor-cache-"

# What a credential looks like on a command line, in an environment, in triggers or in user data.
CREDENTIAL_PATTERNS = (
    # NAME=value / name: value with a credential-ish name: DB_PASS=, PASS=, PWD=, DOCKER_PASSWORD=, API_KEY=...
    re.compile(r"(?i)\b[\w-]*(pass(word|wd)?|pwd|secret|token|api[_-]?key|credentials?)[\w-]*\s*[=:]\s*\S+"),
    # --password x, --password=x, --pass x (not --password-stdin, which is the sanctioned way).
    re.compile(r"(?i)(^|\s)--?pass(word|wd)?(=|\s+)(?!-)\S+"),
    # -p <secret> / -p<secret> after a login, a user (-u) or a tool whose -p is a password
    # (docker/podman/skopeo login, sshpass, mysql...); not `-p 443:443`, `mkdir -p /data`.
    re.compile(
        r"(?i)(\blogin\b|\bsshpass\b|\bmysql\w*|\bmariadb\w*|\s-u\s*\S+)[^;&|\n]*?\s-p\s*"
        r"(?![/.~$-]|\d+(:\d+)*(/\w+)?(\s|$))\S+"
    ),
    # curl/wget -u user:password, --user user:password (curl's man page: "-u, --user <user:password>").
    re.compile(r"(?i)(^|\s)(-u|--user|--proxy-user)(=|\s*)['\"]?[^\s:'\"]+:[^\s'\"]+"),
    # An Authorization header (Basic, Bearer, token ...) with its value.
    re.compile(r"(?i)\b(proxy-)?authorization\s*:\s*\S+"),
    # user:password@ in a URL (RFC 3986 userinfo).
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/@:]+:[^\s/@]+@"),
    # redis-cli -a <password> / --pass; htpasswd -b <file> <user> <password> (batch mode: the password
    # on the command line, htpasswd(1)).
    re.compile(r"(?i)\bredis-cli\b[^;&|\n]*?\s(-a|--pass)\s+\S+"),
    re.compile(r"\bhtpasswd\b[^;&|\n]*?\s-[a-zA-Z]*b[a-zA-Z]*\s"),  # -b, not -B (bcrypt): case matters
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b(ghp|gho|ghs|github_pat|dckr_pat|glpat)_[A-Za-z0-9_-]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),
)
# The program's components that run commands on its VMs; the SSH connection of each is built from the
# VM's EIP, its console host key and the stack's SSH key (components/vm/install.py and probe.py ConnectionArgs).
COMMAND_OWNERS = ("HarborInstall", "HarborProbe", "HarborCaa", "HarborUpgradeHold")
COMMAND_FIELDS = ("create", "update", "delete", "environment", "triggers")


def strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a value with its path; an unknown anywhere is Undecidable."""
    value = known(value, path)
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            for where, text in strings(item, f"{path}.{key}"):
                yield where, f"{key}={text}"
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def _credential_in(value: Any, path: str) -> bool:
    return any(pattern.search(text) for _, text in strings(value, path) for pattern in CREDENTIAL_PATTERNS)


# ---------------------------------------------------------------------------------------------
# One check per type


def nothing_to_check(_review: Review) -> None:
    """Allowed as the program makes it: no setting of this type widens what the stack exposes."""


def default_provider(review: Review) -> None:
    """The engine's default provider (the program declares none): named default[_<version>] by the
    engine (pkg/resource/deploy/providers/registry.go), never pointed at other endpoints."""
    resource = review.resource
    urn = Urn.parse(resource.urn)
    if urn is None or re.fullmatch(r"default(_[\w-]+)?", urn.name) is None:
        review.problems.append(
            f"provider {resource.name!r} is declared by the program: harbor-cache uses only the engine's default providers"
        )

    def endpoints() -> list[Violation]:
        custom = [key for key in AWS_PROVIDER_OFF_ONLY_KEYS if not _off(known(resource.props.get(key), key))]
        return [f"the provider sets {custom}: requests (and their signatures) would go elsewhere; remove them"] if custom else []

    def program_default_tags() -> list[Violation]:
        keys = [key for key in _default_tag_keys(resource.props) if key.lower().startswith(PROGRAM_TAG_PREFIX)]
        if keys:
            return [
                f"the provider's defaultTags set {sorted(keys)}: keys starting with {PROGRAM_TAG_PREFIX!r} are the program's "
                "own (policy exemptions, snapshots) and would land on every resource; remove them from aws:defaultTags"
            ]
        return []

    def identity() -> list[Violation]:
        # The engine hands Analyze a provider's CheckConfig output (step_generator.go generateSteps: Check, which for
        # a provider is providers/registry.go Registry.Check -> CheckConfig; then analyzeAll), a structured value
        # possibly as its JSON text ("[]", "{}"), so any value that is not empty counts.
        static = [key for key in PROVIDER_IDENTITY_KEYS if not _empty(known(resource.props.get(key), key))]
        if static:
            return [
                f"the provider sets {static}: the stack is deployed with the deploying identity (OIDC), never with static "
                "keys, a profile, other config files or another credential endpoint; remove them from the stack's aws:* "
                "config and set the environment instead (AWS_PROFILE, AWS_CONFIG_FILE, ...)"
            ]
        return []

    def aws_keys_allowed() -> list[Violation]:
        # Review 22f L2, deny by default: every other key the AWS provider reads is refused (identity() names the
        # identity keys with their own message).
        other = sorted(
            key
            for key, value in resource.props.items()
            if key not in AWS_PROVIDER_ALLOWED_KEYS and key not in PROVIDER_IDENTITY_KEYS and not _empty(known(value, key))
        )
        if other:
            return [
                f"the provider sets {other}, which the pack does not know as harmless (it allows "
                f"{sorted(AWS_PROVIDER_ALLOWED_KEYS)}); remove them from the stack's aws:* config"
            ]
        return []

    def ignored_tags() -> list[Violation]:
        ignored = _ignored_program_tags(known(resource.props.get("ignoreTags"), "ignoreTags"))
        if ignored:
            return [
                f"the provider's ignoreTags {ignored}: the provider would stop managing the program's "
                f"{PROGRAM_TAG_PREFIX!r} tags (terraform-provider-aws tags KeyValueTags.IgnoreConfig, keys and key "
                "prefixes: left out of every diff, so a tag changed or removed outside is never put back, and the pack's "
                "snapshot and exemption checks read those tags); remove them from aws:ignoreTags"
            ]
        return []

    review.judge(endpoints)
    review.judge(program_default_tags)
    review.judge(identity)
    if resource.type == "pulumi:providers:aws":
        review.judge(aws_keys_allowed)
        review.judge(ignored_tags)


# Who the provider acts as (review 22f L2): static keys (aws:accessKey/secretKey/token), another role
# (aws:assumeRoles, aws:assumeRoleWithWebIdentity; assumeRole before pulumi-aws v6), a profile or other shared config or
# credentials files (a profile may name role_arn, source_profile, credential_process), or another host to ask for the
# instance credentials (ec2MetadataServiceEndpoint, and its mode). The settings refuse the same keys
# (components/settings/namespaces.py PROVIDER_ONLY_CREDENTIAL_KEYS; tests/policy/test_bypass_provider.py keeps them equal).
PROVIDER_IDENTITY_KEYS = (
    "accessKey",
    "secretKey",
    "token",
    "assumeRole",
    "assumeRoles",
    "assumeRoleWithWebIdentity",
    "profile",
    "sharedConfigFiles",
    "sharedCredentialsFiles",
    "ec2MetadataServiceEndpoint",
    "ec2MetadataServiceEndpointMode",
)
# Keys that send requests elsewhere: allowed only when off (empty, "[]", false).
AWS_PROVIDER_OFF_ONLY_KEYS = ("endpoints", "insecure", "customCaBundle", "httpProxy", "httpsProxy")
# The inputs of the default `pulumi:providers:aws` a stack may set: the engine's default provider takes the stack's
# `aws:*` config (pulumi pkg/resource/deploy/default_providers.go newRegisterDefaultProviderEvent: GetPackageConfig)
# and adds `version` (providers/registry.go SetProviderVersion; the plugin download URL and checksums go under
# `__internal`, which the analyzer never sees: analyzer_plugin.go marshalProvider, SkipInternalKeys). pulumi-aws's
# CheckConfig (pulumi-terraform-bridge pkg/x/muxer CheckConfig: the union of its SDKv2 and plugin-framework halves;
# pkg/pf/tfbridge/provider_checkconfig.go applies the config's DefaultInfo) adds `region` (AWS_REGION,
# AWS_DEFAULT_REGION), `skipCredentialsValidation` (false) and `skipRegionValidation` (true): pulumi-aws's config
# defaults (provider/resources.go ProviderInfo.Config DefaultInfo; 7.51.1's SDK Provider shows the same,
# pulumi_aws/provider.py; earlier versions also default `skipMetadataApiCheck` to true). Every typed value arrives JSON-encoded
# (pkg/tfbridge/config_encoding.go jsonEncodePropertyValue: "false", "[]"). The rest are pulumi-aws's config keys
# (pulumi_aws/config/vars.py) that change neither who the provider is nor where its requests go: retries, validation
# skips, account guards, AWS's own endpoint variants (FIPS, dual-stack, S3 path style, the STS region), user agents,
# hosts excluded from a proxy, tag policy and default tags (judged above: no program keys), ignoreTags (judged: none
# of the program's). The settings accept exactly these (components/settings/namespaces.py AWS_PROVIDER_SETTABLE_KEYS;
# a test keeps them equal).
AWS_PROVIDER_ALLOWED_KEYS = frozenset(
    {
        "version",
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


def _empty(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip() in ("", "[]", "{}", "null")
    return value in (None, [], {})


def _off(value: Any) -> bool:
    """Review 22f FR3: a setting that is empty or false is off; CheckConfig hands `aws:insecure: false` back as
    "false" and `aws:endpoints: []` as "[]" (config_encoding.go jsonEncodePropertyValue)."""
    if isinstance(value, str) and value.strip().lower() == "false":
        return True
    return value is False or _empty(value)


def _ignored_program_tags(value: Any) -> list[str]:
    """The `ignoreTags` keys and key prefixes that would drop a tag key starting with PROGRAM_TAG_PREFIX (the provider
    matches keys exactly and prefixes with strings.HasPrefix; compared case-insensitively here, the stricter). A value
    that is not the provider's shape ({keys: [...], keyPrefixes: [...]}) counts as dropping them."""
    if _empty(value):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [repr(value)]
    if not isinstance(value, Mapping):
        return [repr(value)]
    found = []
    for field in ("keys", "keyPrefixes"):
        items = value.get(field) or []
        if not isinstance(items, (list, tuple)):
            return [repr(value)]
        for item in items:
            text = str(item).lower()
            prefix = field == "keyPrefixes"
            if text.startswith(PROGRAM_TAG_PREFIX) or (prefix and PROGRAM_TAG_PREFIX.startswith(text)):
                found.append(f"{field}: {item!r}")
    return found


def _default_tag_keys(props: Mapping[str, Any] | None) -> list[str]:
    """The keys of an AWS provider's defaultTags.tags. The engine configures a default provider from the stack's
    `aws:*` config (pulumi docs/architecture/providers/default.md), a structured value possibly as its JSON text."""
    value = (props or {}).get("defaultTags")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []  # not the provider's shape: its CheckConfig refuses it
    tags = value.get("tags") if isinstance(value, Mapping) else None
    return [str(key) for key in tags] if isinstance(tags, Mapping) else []


def program_tags_from_elsewhere(resource: Resource) -> list[Violation]:
    """The program's tag keys come from the program's own `tags` only. pulumi-aws merges its provider's
    defaultTags into every resource it checks, before the analyzer sees the inputs (provider/tags.go
    applyTags/mergeTags: into `tagsAll` in v7, into `tags` as well since pulumi-aws#2655 in v6), so a
    `harbor-cache:` default tag would carry an exemption to every resource: refused on the provider
    of each request and wherever `tagsAll` holds a program key that `tags` does not."""
    problems = []
    from_defaults = [key for key in _default_tag_keys(resource.provider_props) if key.lower().startswith(PROGRAM_TAG_PREFIX)]
    if from_defaults:
        problems.append(
            f"the provider of {resource.name!r} sets default tags {sorted(from_defaults)}: keys starting with "
            f"{PROGRAM_TAG_PREFIX!r} are the program's own; remove them from aws:defaultTags"
        )
    tags_all = resource.props.get("tagsAll")
    if isinstance(tags_all, Mapping):
        foreign = [
            str(key)
            for key, value in tags_all.items()
            if str(key).lower().startswith(PROGRAM_TAG_PREFIX) and resource.tags.get(key) != value
        ]
        if foreign:
            problems.append(
                f"{resource.name!r} carries {sorted(foreign)} in tagsAll but not in its own tags: the program's tags come "
                "from the program, never from provider default tags"
            )
    return problems


def programs_component(resource: Resource) -> list[Violation]:
    """A component of the program's types is the program's own: under HarborCache (HarborCache at the stack's
    root), named as the program names it (reading.PROGRAM_COMPONENTS), so a second one made elsewhere
    cannot lend its children the program's exemptions."""
    prefix = f"{PROJECT}:index:"
    if not resource.type.startswith(prefix):
        return []
    kind = resource.type.removeprefix(prefix)
    urn = Urn.parse(resource.urn)
    wanted = (resource.type,) if kind == "HarborCache" else (f"{prefix}HarborCache", resource.type)
    if kind not in PROGRAM_COMPONENTS:
        return []  # not a type of the program's: only-the-programs-resource-types refuses it
    if urn is None or urn.types != wanted or not re.fullmatch(PROGRAM_COMPONENTS[kind], urn.name):
        return [
            f"component {kind} {resource.name!r} is not the program's (the program makes one, named "
            f"{PROGRAM_COMPONENTS[kind]!r}, under HarborCache 'harbor'): components of the program's types are made by "
            "the program only"
        ]
    return []


def _imds_options(options: Any, path: str = "metadataOptions") -> list[Violation]:
    options = known(options, path) or {}
    problems = []
    if known(options.get("httpTokens"), f"{path}.httpTokens") != "required":
        problems.append("IMDSv1 is allowed: set metadata_options.http_tokens='required'")
    if known(options.get("httpProtocolIpv6"), f"{path}.httpProtocolIpv6") == "enabled":
        problems.append(
            "the IPv6 IMDS endpoint [fd00:ec2::254] is enabled: a second way to the instance role and the user "
            "data; leave metadata_options.http_protocol_ipv6 disabled"
        )
    # Unset, the hop limit is the AMI's or the account's default (2 for many current AMIs). Over the
    # analyzer's gRPC the number arrives as a protobuf Struct double (1.0), not an int.
    hop_limit = known(options.get("httpPutResponseHopLimit"), f"{path}.httpPutResponseHopLimit")
    if isinstance(hop_limit, bool) or not isinstance(hop_limit, int | float) or hop_limit > MAX_IMDS_HOP_LIMIT:
        problems.append(
            f"IMDS hop limit is {hop_limit}: set metadata_options.http_put_response_hop_limit={MAX_IMDS_HOP_LIMIT} "
            "(above 1, every container on a bridge network reaches the instance role and the user data)"
        )
    return problems


def ec2_instance(review: Review) -> None:
    """IMDSv2 with hop limit 1 in every mode, no IPv6 IMDS endpoint, encrypted
    disks, no launch template, user data without credentials. Which role it runs as: stack check
    `instances-run-as-the-programs-role`."""
    props = review.resource.props
    review.judge(lambda: _imds_options(props.get("metadataOptions")))

    def disks() -> list[Violation]:
        problems = []
        root = known(props.get("rootBlockDevice"), "rootBlockDevice") or {}
        if root.get("encrypted") is not True:
            problems.append("root volume is not encrypted: set root_block_device.encrypted=True")
        problems += stacks_kms_key(root.get("kmsKeyId"), "rootBlockDevice.kmsKeyId")
        for index, device in enumerate(as_list(props.get("ebsBlockDevices"), "ebsBlockDevices")):
            if known(device, f"ebsBlockDevices[{index}]").get("encrypted") is not True:
                problems.append(f"EBS block device {device.get('deviceName')} is not encrypted: set encrypted=True")
            # Review 22d S1b: a disk made from another account's snapshot (content its owner chose, a second root
            # file system label competing for / at boot). The program's instance has no block device of its own
            # beyond the root; its data volume is the Volume resource, whose snapshot is judged there.
            if known(device.get("snapshotId"), f"ebsBlockDevices[{index}].snapshotId") not in (None, ""):
                problems.append(
                    f"EBS block device {device.get('deviceName')} is made from snapshot {device.get('snapshotId')!r}: the "
                    "program's instance takes no block device from a snapshot; restore the data volume with "
                    "dataVolumeSnapshotId instead"
                )
        return problems

    def launch_template() -> list[Violation]:
        if as_list(props.get("securityGroups"), "securityGroups"):
            # By name: EC2 honours them in a default VPC (RunInstances SecurityGroups), and the stack check
            # `security-groups-are-the-programs` reads only vpcSecurityGroupIds (which the program uses).
            return [
                "the instance joins security groups by name (security_groups), which may be pre-existing ones: remove "
                "security_groups (the program gives the instance its group through vpc_security_group_ids)"
            ]
        if as_list(props.get("networkInterfaces"), "networkInterfaces"):
            return [
                "the instance attaches network interfaces, whose security groups the pack does not see: remove "
                "network_interfaces (the program gives the instance its group through vpc_security_group_ids)"
            ]
        if known(props.get("launchTemplate"), "launchTemplate"):
            return [
                "the instance starts from a launch template, whose metadata options and user data the pack does not see: "
                "remove it"
            ]
        return []

    def user_data() -> list[Violation]:
        problems = []
        if known(props.get("userDataBase64"), "userDataBase64"):
            problems.append("user_data_base64 hides the user data from review: pass user_data as text")
        if _credential_in(props.get("userData"), "userData"):
            problems.append(
                "the user data carries what looks like a password, token or key: every process that reaches IMDS "
                "reads it, and EC2 shows it to anyone with ec2:DescribeInstanceAttribute; send secrets over SSH on stdin"
            )
        return problems

    for judge in (disks, launch_template, user_data):
        review.judge(judge)


def stacks_kms_key(value: Any, path: str) -> list[Violation]:
    """A disk's key is the stack's `kmsKeyArn` setting, or AWS's default key when the stack sets none
    (components/aws/vm.py: kms_key_id=settings.kms_key_arn or None): another key, of another account say, would
    let its owner read the disks' snapshots shared with it, or revoke the key and stop the cache."""
    wanted = _stack_config("kmsKeyArn") or None
    found = known(value, path) or None
    if found == wanted:
        return []
    return [f"{path} is {found!r}, not the stack's kmsKeyArn setting ({wanted!r}): encrypt the disks with that key only"]


def ebs_volume(review: Review) -> None:
    """Encrypted with the stack's key, and protected: only the scratch volumes of Harbor nodes 1..N-1, which the
    program names <vm>-<i>-data under HarborVm and tags so, go with their node."""
    resource = review.resource
    if known(resource.props.get("encrypted"), "encrypted") is not True:
        review.problems.append("EBS volume is not encrypted: set encrypted=True")
    review.judge(lambda: stacks_kms_key(resource.props.get("kmsKeyId"), "kmsKeyId"))
    review.judge(lambda: _restored_from(resource))
    if resource.protect:
        return
    scratch = (
        resource.tags.get(NODE_SCRATCH_TAG) == "true"
        and resource.made_by("HarborVm", r"[1-9][0-9]*-data")
        and not resource.props.get("snapshotId")
    )
    if not scratch:
        review.problems.append(
            "the data volume can be replaced or deleted by an update: create it with protect=True (and retain_on_delete=True)"
        )


def _restored_from(resource: Resource) -> list[Violation]:
    """Review 22d S1: a volume is made from a snapshot only as the program makes node 0's data volume, from the stack's
    `dataVolumeSnapshotId` setting (components/aws/vm.py snapshot_id=settings.data_volume_snapshot_id or None); whose
    snapshot that is: at up, before the step (aws_lookups.py own_ebs_snapshot: this account's)."""
    snapshot = known(resource.props.get("snapshotId"), "snapshotId")
    if snapshot in (None, ""):
        return []
    configured = _stack_config("dataVolumeSnapshotId") or ""
    if resource.made_by("HarborVm", "data") and snapshot == configured:
        return []
    return [
        f"the volume {resource.name!r} is made from snapshot {snapshot!r}: only node 0's data volume is, from the stack's "
        f"dataVolumeSnapshotId ({configured or 'unset'!r}), a snapshot of this account"
    ]


@dataclass(frozen=True)
class Rule:
    """A security group's inline rule, read strictly: a single tcp port or not, and its address blocks."""

    index: int
    where: str
    port: int | None  # None unless the rule is exactly one tcp port
    shape: str
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    props: Mapping[str, Any]


# The port the HA nodes' public path checks reach the load balancer on, from their Elastic IPs
# (components/aws/load_balancer.py node_address_ingress).
NODE_CHECK_PORT = 443


def _rules(value: Any, path: str, node_addresses: bool = False) -> list[Rule]:
    """With `node_addresses` (the load balancer's group), a block of a 443 rule still unknown at a preview is
    left out: a node's Elastic IP not allocated yet, whose origin the stack check
    load-balancer-admits-allowed-cidrs-and-its-nodes judges (a single address is never too wide)."""
    rules = []
    for index, rule in enumerate(as_list(value, path)):
        where = f"{path}[{index}]"
        rule = known(rule, where)
        protocol = str(known(rule.get("protocol"), f"{where}.protocol")).lower()
        low = number(rule.get("fromPort"), f"{where}.fromPort", 0)
        high = number(rule.get("toPort"), f"{where}.toPort", 65535)
        single = protocol in ("tcp", "6") and low == high
        deferred = node_addresses and single and low == NODE_CHECK_PORT
        networks = [
            network(block, f"{where}.{key}[{i}]")
            for key in ("cidrBlocks", "ipv6CidrBlocks")
            for i, block in enumerate(as_list(rule.get(key), f"{where}.{key}"))
            if not (deferred and is_unknown(block))
        ]
        rules.append(
            Rule(index, where, int(low) if single else None, f"protocol {protocol!r} ports {low:g}-{high:g}", networks, rule)
        )
    return rules


def _ingress_problems(resource: Resource, rules: list[Rule]) -> list[Violation]:
    problems: list[Violation] = []
    blocks: dict[int, list] = {}
    for rule in rules:
        port = rule.port
        if port is None:
            problems.append(f"ingress rule {rule.index} admits {rule.shape}: harbor-cache admits single tcp ports only")
            continue
        if as_list(rule.props.get("prefixListIds"), f"{rule.where}.prefixListIds") or known(
            rule.props.get("self"), f"{rule.where}.self"
        ):
            problems.append(
                f"ingress rule {rule.index} admits a prefix list or the group itself on {port}: the pack cannot see "
                "what a prefix list holds; list address blocks or security groups"
            )
        if port in GROUP_ONLY_PORTS:
            if rule.networks:
                problems.append(
                    f"port {port} admits address blocks: it takes traffic only from the program's security groups "
                    "(the load balancer's, the nodes')"
                )
        elif port in (*ADDRESS_PORTS, *WEB_PORTS):
            blocks.setdefault(port, []).extend(rule.networks)
        else:
            problems.append(
                f"ingress on port {port}: harbor-cache admits only {sorted({*ADDRESS_PORTS, *WEB_PORTS, *GROUP_ONLY_PORTS})}"
            )
    behind_load_balancer = any(rule.port == NODE_HTTP_PORT and rule.props.get("securityGroups") for rule in rules)
    if behind_load_balancer and any(blocks.get(port) for port in WEB_PORTS):
        problems.append(
            "the Harbor nodes' security group admits address blocks on 443/80: nodes behind the load balancer "
            "take web traffic only from its security group"
        )
    world = [port for port, networks in blocks.items() if too_wide(networks)]
    public = resource.tags.get(PUBLIC_ACCESS_TAG) == "true" and (
        resource.made_by("HarborVm", "sg") or resource.made_by("HarborLoadBalancer", "sg")
    )
    for port in world:
        if port == 22:
            problems.append(
                "port 22 is open to 0.0.0.0/0 or ::/0, or to more than a /16 (IPv4) or /48 (IPv6) of public addresses (by the "
                "union of its blocks): list your addresses in sshAllowedCidrs"
            )
        elif port in (METRICS_PORT, CACHE_METRICS_PORT):
            problems.append(f"port {port} (metrics) is open to every address: list your scrapers in metricsAllowedCidrs")
        elif not public:
            problems.append(
                f"port {port} is open to the world, which makes the proxy projects an open pull-through cache: "
                "restrict allowedCidrs, or set allowPublicAccess: true if that is intended (it marks the program's own web group)"
            )
    return problems


# The VM dials the world on 80 and 443 only, plus an upstream's own port where the settings allowed it
# (components/aws/network_rules.py egress_ports; components/settings/upstreams.py allowCustomPortEgress).
WORLD_EGRESS_PORTS = (80, 443)


def world_egress_ports() -> set[int]:
    ports = set(WORLD_EGRESS_PORTS)
    upstreams = _stack_config("upstreams")
    for item in upstreams if isinstance(upstreams, list) else []:
        if isinstance(item, Mapping) and item.get("allowCustomPortEgress") is True:
            try:
                port = urlsplit(str(item.get("url"))).port
            except ValueError:
                port = None
            ports.update([port] if port else [])
    return ports


def _egress_problems(rules: list[Rule]) -> list[Violation]:
    problems = [f"egress rule {rule.index} lets out {rule.shape}: single tcp ports only" for rule in rules if rule.port is None]
    allowed = world_egress_ports()
    for rule in rules:
        if rule.port is not None and rule.port not in allowed and too_wide(rule.networks):
            problems.append(
                f"egress rule {rule.index} lets tcp {rule.port} out to the world: the VM dials the world on "
                f"{sorted(allowed)} only (an upstream's own port with allowCustomPortEgress)"
            )
    return problems


def ec2_security_group(review: Review) -> None:
    """Ingress: single tcp ports; 22 and metrics from address blocks that are not the world; 443/80
    from the world only on the program's web group with allowPublicAccess; Harbor's 8080 and the
    databases only from security groups; no prefix lists. Egress: single tcp ports."""
    props = review.resource.props
    node_addresses = review.resource.made_by("HarborLoadBalancer", "sg")
    review.judge(lambda: _ingress_problems(review.resource, _rules(props.get("ingress"), "ingress", node_addresses)))
    review.judge(lambda: _egress_problems(_rules(props.get("egress"), "egress")))


def _dns01_problems(statement: Mapping[str, Any], path: str) -> list[Violation]:
    problems = []
    resources = as_list(statement.get("Resource"), f"{path}.Resource")
    if len(resources) != 1 or not isinstance(resources[0], str) or not HOSTED_ZONE_ARN_RE.fullmatch(resources[0]):
        problems.append(f"{DNS01_CHANGE} must name exactly one hosted zone ARN, not {resources}: scope it to the stack's zone")
    condition = statement.get("Condition") or {}
    equals = condition.get("ForAllValues:StringEquals") or {} if isinstance(condition, Mapping) else {}
    names = equals.get(DNS01_NAMES_KEY) if isinstance(equals, Mapping) else None
    names = names if isinstance(names, list) else [names]
    if (
        set(condition) != {"ForAllValues:StringEquals"}
        or len(names) != 1
        or not isinstance(names[0], str)
        or not names[0].startswith(ACME_PREFIX)
        or any(char in names[0] for char in "*?")
    ):
        problems.append(
            f"{DNS01_CHANGE} must be limited to one name, _acme-challenge.<hostname>, with a ForAllValues:StringEquals "
            f"condition on {DNS01_NAMES_KEY} (and nothing else)"
        )
    if isinstance(equals, Mapping) and equals.get(DNS01_TYPES_KEY) not in (["TXT"], "TXT"):
        problems.append(f"{DNS01_CHANGE} must be limited to TXT records with {DNS01_TYPES_KEY} = ['TXT']")
    return problems


def _registry_bucket_statement(statement: Mapping[str, Any]) -> bool:
    """True for the registry's S3 grant: its exact actions on named buckets (or those buckets' objects).
    Which bucket: stack check `registry-grant-names-the-programs-bucket`."""
    actions, resources = as_list(statement.get("Action"), "Action"), as_list(statement.get("Resource"), "Resource")
    if not actions or not resources or "Condition" in statement:
        return False

    def programs_bucket(arn: Any) -> bool:
        match = BUCKET_ARN_RE.fullmatch(arn) if isinstance(arn, str) else None
        return match is not None and match.group(1).startswith(PROGRAM_BUCKET_PREFIX)

    if all(a in REGISTRY_S3_BUCKET_ACTIONS for a in actions):
        return all(programs_bucket(r) for r in resources)
    if all(a in REGISTRY_S3_OBJECT_ACTIONS for a in actions):
        return all(isinstance(r, str) and r.endswith("/*") and programs_bucket(r[:-2]) for r in resources)
    return False


def _statement_problems(statement: Mapping[str, Any], path: str, registry: bool, namespace: str) -> list[Violation]:
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement or "NotResource" in statement or "Principal" in statement or "NotPrincipal" in statement:
        return [
            "an Allow statement with NotAction/NotResource grants everything it does not name (and a role policy has no "
            f"Principal): list the actions ({', '.join(DNS01_ACTIONS)}) and resources instead"
        ]
    if any(str(action).startswith("s3:") for action in as_list(statement.get("Action"), f"{path}.Action")):
        if registry and _registry_bucket_statement(statement):
            return []
        return [
            "S3 access is granted only by the program's registry policy (HarborStorage's registry-access), with the "
            f"registry's actions on its bucket (named {PROGRAM_BUCKET_PREFIX}*)"
        ]
    problems = []
    for action in as_list(statement.get("Action"), f"{path}.Action"):
        if action == DNS01_CHANGE:
            problems += _dns01_problems(statement, path)
        elif action == DNS01_LIST:
            # lego reads the records of the zone it was given (components/aws/dns.py dns01_policy): that one zone.
            zones = as_list(statement.get("Resource"), f"{path}.Resource")
            if len(zones) != 1 or not isinstance(zones[0], str) or not HOSTED_ZONE_ARN_RE.fullmatch(zones[0]):
                problems.append(f"{DNS01_LIST} must name exactly one hosted zone ARN, not {zones}: the stack's zone")
        elif action in DNS01_ACTIONS or action == SNAPSHOT_READ_ACTION:
            continue
        elif action == SUBSCRIBERS_READ_ACTION:
            resources = as_list(statement.get("Resource"), f"{path}.Resource")
            if len(resources) != 1 or not TOPIC_ARN_RE.fullmatch(str(known(resources[0], f"{path}.Resource"))):
                problems.append(
                    f"{SUBSCRIBERS_READ_ACTION} must name exactly one SNS topic's ARN (the alarm topic), not {resources}"
                )
        elif action == METRICS_ACTION:
            condition = statement.get("Condition") or {}
            condition_namespace = (
                (condition.get("StringEquals") or {}).get("cloudwatch:namespace") if isinstance(condition, Mapping) else None
            )
            if condition_namespace != namespace or set(condition) != {"StringEquals"}:
                problems.append(
                    f"{METRICS_ACTION} must be limited to the stack's namespace {namespace!r} with a StringEquals "
                    "condition on cloudwatch:namespace (another namespace is another stack's alarms)"
                )
        else:
            covered = [name for name in DNS01_ACTIONS if action_matches(action, name)]
            if covered and not any(c in str(action) for c in "*?"):
                problems.append(f"IAM action {action!r} is {covered[0]} in another spelling: write it exactly so reviews see it")
            else:
                problems.append(
                    f"IAM action {action!r} widens the instance role beyond DNS-01 and metrics: only "
                    f"{', '.join((*DNS01_ACTIONS, METRICS_ACTION, SNAPSHOT_READ_ACTION, SUBSCRIBERS_READ_ACTION))} are allowed, "
                    "spelled out (no wildcards)"
                )
    return problems


def iam_role_policy(review: Review) -> None:
    """The instance role's permissions: DNS-01 (one zone, one name, TXT), metrics into one namespace,
    the subscriptions of one topic, and in the registry policy the registry's S3 actions. On which
    role: stack check."""
    resource = review.resource
    registry = resource.made_by("HarborStorage", "registry-access")
    urn = Urn.parse(resource.urn)
    namespace = f"{METRICS_NAMESPACE_PREFIX}/{urn.stack if urn else '<stack>'}"

    def document() -> list[Violation]:
        return [
            problem
            for index, statement in enumerate(statements(resource.props.get("policy"), "policy"))
            for problem in _statement_problems(statement, f"policy.Statement[{index}]", registry, namespace)
        ]

    review.judge(document)


def iam_role(review: Review) -> None:
    """Trusted by exactly one AWS service (EC2 for the instance role, DLM for the snapshot role),
    with no managed or inline policies of its own."""
    props = review.resource.props

    def trust() -> list[Violation]:
        found = statements(props.get("assumeRolePolicy"), "assumeRolePolicy")
        services = set()
        for statement in found:
            principal = statement.get("Principal")
            if (
                statement.get("Effect") != "Allow"
                or set(statement) - {"Sid", "Effect", "Principal", "Action", "Condition"}
                or statement.get("Action") not in ("sts:AssumeRole", ["sts:AssumeRole"])
                or not isinstance(principal, Mapping)
                or set(principal) != {"Service"}
                or principal["Service"] not in (EC2_SERVICE, DLM_SERVICE, [EC2_SERVICE], [DLM_SERVICE])
            ):
                return [
                    f"the role's trust policy must let exactly one service ({EC2_SERVICE} or {DLM_SERVICE}) sts:AssumeRole, "
                    f"nothing else (no AWS principals, no '*', no NotPrincipal): it has {statement}"
                ]
            services.add(str(as_list(principal["Service"], "Principal.Service")[0]))
        return [] if len(services) == 1 else [f"the role must trust exactly one service, not {sorted(services) or 'none'}"]

    def own_policies() -> list[Violation]:
        problems = []
        if as_list(props.get("managedPolicyArns"), "managedPolicyArns"):
            problems.append(f"the role carries managed_policy_arns {list(props['managedPolicyArns'])}: remove them")
        if any((policy or {}).get("policy") for policy in as_list(props.get("inlinePolicies"), "inlinePolicies")):
            problems.append("the role carries inline_policies: remove them (the DNS-01 permission is its own RolePolicy)")
        return problems

    review.judge(trust)
    review.judge(own_policies)


def iam_role_policy_attachment(review: Review) -> None:
    """Only AWS's DLM service policy, only by the program's attachment; on which role: stack check."""
    arn = review.resource.props.get("policyArn")

    def attached() -> list[Violation]:
        if known(arn, "policyArn") != DLM_SERVICE_POLICY or not review.resource.made_by("HarborVm", "dlm-policy"):
            return [
                f"managed policy {arn} is attached to a role: only {DLM_SERVICE_POLICY}, by the program's snapshot "
                "role attachment"
            ]
        return []

    review.judge(attached)


def dlm_lifecycle_policy(review: Review) -> None:
    """Snapshots stay in this account and region: no cross-region copies, no sharing, no cross-account events."""
    props = review.resource.props

    def details() -> list[Violation]:
        policy = known(props.get("policyDetails"), "policyDetails") or {}
        problems = []
        if known(policy.get("policyType"), "policyDetails.policyType") not in (None, "EBS_SNAPSHOT_MANAGEMENT"):
            problems.append(f"DLM policy type {policy.get('policyType')!r}: only EBS_SNAPSHOT_MANAGEMENT")
        if policy.get("eventSource") or policy.get("actions"):
            problems.append("the DLM policy copies or acts on other accounts' events: remove event_source/actions")
        for index, schedule in enumerate(as_list(policy.get("schedules"), "policyDetails.schedules")):
            if schedule.get("crossRegionCopyRules") or schedule.get("shareRules"):
                problems.append(
                    f"DLM schedule {index} copies snapshots to another region or shares them with other accounts: "
                    "the data volume's snapshots stay in this account"
                )
        return problems

    review.judge(details)


def load_balancer_listener(review: Review) -> None:
    """HTTPS with a TLS 1.2+/1.3 policy; plain HTTP only redirects to HTTPS."""
    props = review.resource.props

    def listener() -> list[Violation]:
        protocol = str(known(props.get("protocol"), "protocol") or "").upper()
        actions = as_list(props.get("defaultActions"), "defaultActions")
        if protocol == "HTTP":
            # ELB keeps what a redirect leaves out or names #{host} (ELB User Guide, "Redirect actions"): the same host.
            redirects = all(
                action.get("type") == "redirect"
                and str((action.get("redirect") or {}).get("protocol", "")).upper() == "HTTPS"
                and (action.get("redirect") or {}).get("host") in (None, "#{host}")
                for action in actions
            )
            if not actions or not redirects:
                return [
                    "an HTTP listener serves Harbor in plain text or sends it elsewhere: its only action must redirect to "
                    "HTTPS on the same host"
                ]
            return []
        if protocol == "HTTPS":
            policy = known(props.get("sslPolicy"), "sslPolicy")
            problems = []
            if not isinstance(policy, str) or not TLS_POLICY_RE.fullmatch(policy):
                problems.append(
                    f"the HTTPS listener's ssl_policy is {policy!r}: use a TLS 1.2+ policy with TLS 1.3 "
                    "(ELBSecurityPolicy-TLS13-1-2-2021-06 or another ELBSecurityPolicy-TLS13-1-2-*/1-3-*)"
                )
            # Where the decrypted traffic goes: one forward to one target group, named where the stack check
            # `identities-come-from-the-program` compares it with the program's (no weighted `forward` block,
            # redirect, fixed response or authentication action, which it would not see).
            used = [
                {key for key, value in action.items() if value not in (None, [], {})} if isinstance(action, Mapping) else {"?"}
                for action in actions
            ]
            if len(actions) != 1 or used[0] - {"type", "targetGroupArn", "order"} or actions[0].get("type") != "forward":
                problems.append(
                    f"the HTTPS listener's default actions are {actions!r}: its one action forwards to the program's "
                    "target group, named by targetGroupArn"
                )
            return problems
        return [
            f"a load balancer listener with protocol {protocol or 'unset'!r}: harbor-cache serves only HTTPS (and 80 redirects)"
        ]

    review.judge(listener)


def load_balancer(review: Review) -> None:
    """An application load balancer with its own security group(s)."""
    props = review.resource.props

    def kind() -> list[Violation]:
        problems = []
        if known(props.get("loadBalancerType"), "loadBalancerType") not in (None, "application"):
            problems.append(
                f"load balancer type {props.get('loadBalancerType')!r}: harbor-cache uses an application load balancer"
            )
        if not as_list(props.get("securityGroups"), "securityGroups") and props.get("securityGroups") is None:
            problems.append("the load balancer has no security group: give it the program's")
        return problems

    def logs() -> list[Violation]:
        # Review 22d B2: ELB delivers its logs to any bucket whose policy admits it, another account's too: every
        # request line (Harbor's /service/token?account=<user>&scope=...) and client address. The program sets no
        # log block (components/aws/load_balancer.py); a block that sends nothing (no bucket, not enabled) is no log.
        sending = []
        for key in LOAD_BALANCER_LOGS:
            block = known(props.get(key), key)
            if block not in (None, {}, []) and (
                not isinstance(block, Mapping) or block.get("enabled") not in (None, False) or block.get("bucket")
            ):
                sending.append(key)
        if sending:
            return [
                f"the load balancer sets {sending}: its logs (request lines with Harbor's token requests, client addresses) "
                "would go to a bucket the program does not make; remove them"
            ]
        return []

    review.judge(kind)
    review.judge(logs)


# pulumi-aws lb.LoadBalancer blocks that send logs to an S3 bucket.
LOAD_BALANCER_LOGS = ("accessLogs", "connectionLogs", "healthCheckLogs")


# The CAA values the program writes (components/aws/caa.py), one of two sets and nothing else: one VM, Let's
# Encrypt bound to the stack's ACME account (production or staging; which account: stack check
# `the-caches-name-is-the-programs`, against the account command's stdout) and no wildcards (caa_records);
# replicas > 1, Amazon for ACM's certificate plus Let's Encrypt by DNS-01 only, no wildcards (acm_caa_records).
CAA_ACCOUNT_RE = re.compile(
    r'0 issue "letsencrypt\.org; accounturi=https://acme(-staging)?-v02\.api\.letsencrypt\.org/acme/acct/\d+"'
)
CAA_NO_WILDCARDS = '0 issuewild ";"'
HA_CAA_RECORDS = ('0 issue "amazon.com"', '0 issue "letsencrypt.org; validationmethods=dns-01"', CAA_NO_WILDCARDS)


def caa_shape(records: list) -> str | None:
    """Which of the program's CAA sets `records` is ("one-vm", "ha"), or None."""
    values = sorted(str(value) for value in records)
    if values == sorted(HA_CAA_RECORDS):
        return "ha"
    if len(values) == 2 and CAA_NO_WILDCARDS in values and any(CAA_ACCOUNT_RE.fullmatch(v) for v in values):
        return "one-vm"
    return None


# The program's records: (component, name part) -> what it is.
PROGRAM_RECORDS = {
    ("HarborDns", "a"): "address",
    ("HarborCaa", "caa"): "CAA",
    ("HarborLoadBalancer", "certificate-validation"): "ACM",
}


def _address_record_shape(name: str, kind: str, props: Mapping[str, Any]) -> list[Violation]:
    """The cache's address record as components/aws/dns.py makes it (review 22c F4: an AAAA with a foreign IPv6
    passed): type A, with one VM `records` (the EIP's address), with replicas > 1 an alias of the load balancer."""
    if kind != "A":
        return [f"record {name!r} is {kind}: the cache's address record is type A only (the program writes no AAAA)"]
    replicas = _stack_config("replicas")
    one_vm = replicas in (None, 1, "1")
    wanted, unwanted = ("records", "aliases") if one_vm else ("aliases", "records")
    if props.get(unwanted) not in (None, []) or props.get(wanted) in (None, []):
        return [
            f"record {name!r} sets {[key for key in ('records', 'aliases') if props.get(key) not in (None, [])]}: with "
            f"replicas {replicas or 1!r} the program's address record sets {wanted} only ("
            + ("the VM's Elastic IP" if one_vm else "an alias of the program's load balancer")
            + ")"
        ]
    return []


def route53_record(review: Review) -> None:
    """Only the program's three records: the cache's name (A or alias), its CAA record (Let's Encrypt with
    the stack's ACME account, or Amazon) and ACM's validation CNAME under the cache's name; never the
    DNS-01 name, which only Traefik writes, no delegation, and no overwrite of an existing record but
    ACM's validation record."""
    resource = review.resource
    props = resource.props
    which = next((what for (owner, part), what in PROGRAM_RECORDS.items() if resource.made_by(owner, part)), None)

    def record() -> list[Violation]:
        kind = str(known(props.get("type"), "type")).upper()
        name = str(known(props.get("name"), "name")).lower().rstrip(".")
        if kind not in ("A", "CAA", "CNAME"):
            return [f"a {kind} record: harbor-cache writes only A, CAA and ACM's validation CNAME"]
        if name.startswith(ACME_PREFIX.rstrip(".")):
            return [f"a record for {name}: the DNS-01 name is Traefik's alone (it proves control of the name to any CA)"]
        if which is None:
            return [
                f"record {resource.name!r} ({kind} {name}) is not one of the program's (harbor-dns-a, harbor-caa-caa, "
                "harbor-lb-certificate-validation): harbor-cache writes no other record in the zone"
            ]
        if kind == "CNAME" and which != "ACM":
            return ["a CNAME outside the program's ACM validation record"]
        hostname = _stack_hostname()
        if (name != hostname) if which != "ACM" else not name.endswith(f".{hostname}"):
            return [f"record {resource.name!r} is for {name}, not the cache's name {hostname} (from {PROJECT}:hostname)"]
        problems = []
        if props.get("allowOverwrite") and which != "ACM":
            problems.append(f"record {resource.name!r} sets allow_overwrite: it would take over an existing record; remove it")
        if kind == "CAA":
            records = [known(value, f"records[{i}]") for i, value in enumerate(as_list(props.get("records"), "records"))]
            if caa_shape(records) is None:
                problems.append(
                    f"CAA values {records!r}: only the program's sets, Let's Encrypt with the stack's ACME account "
                    f'(accounturi) and issuewild ";" (one VM), or exactly {list(HA_CAA_RECORDS)} (replicas > 1)'
                )
        if which == "address":
            problems += _address_record_shape(resource.name, kind, props)
        if which == "ACM" and props.get("aliases") not in (None, []):
            # components/aws/load_balancer.py: records=[the certificate's resourceRecordValue], no alias; which value:
            # stack check the-caches-name-is-the-programs and, at up, the lookup of records[] (policy/aws_lookups.py).
            problems.append(f"record {resource.name!r} sets aliases: ACM's validation record holds its CNAME value only")
        return problems

    review.judge(record)


# An SNS topic, or EC2's own recover/reboot of the instance the alarm watches (CloudWatch User Guide,
# "Create alarms to stop, terminate, reboot, or recover an EC2 instance"): the status alarms do both.
ALARM_ACTION_RE = re.compile(r"arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+|arn:aws[\w-]*:automate:[\w-]+:ec2:(recover|reboot)")


def cloudwatch_metric_alarm(review: Review) -> None:
    """Alarm actions notify (SNS) or recover/reboot the instance; never stop or terminate it."""
    props = review.resource.props

    def actions() -> list[Violation]:
        problems = []
        for key in ("alarmActions", "okActions", "insufficientDataActions"):
            for index, arn in enumerate(as_list(props.get(key), key)):
                if not ALARM_ACTION_RE.fullmatch(str(known(arn, f"{key}[{index}]"))):
                    problems.append(
                        f"alarm action {arn!r} in {key}: alarms only notify an SNS topic or recover/reboot the instance"
                    )
        return problems

    review.judge(actions)


def sns_topic(review: Review) -> None:
    """No topic policy: only the account's own principals publish or subscribe."""
    if review.resource.props.get("policy"):
        review.problems.append("the alarm topic carries a policy: remove it (the account's own principals suffice)")


# Who may publish to the alarm topic besides the account's principals: CloudWatch's alarms and the
# EventBridge rules of the backup watch, each only from the sources its condition names.
TOPIC_PUBLISHERS = {"cloudwatch.amazonaws.com", "events.amazonaws.com"}


# Whose notifications each publisher may send (components/aws/backup_watch.py topic_policy): CloudWatch for the
# account's alarms (ArnLike arn:...:alarm:*), EventBridge for named rules (ArnEquals, no wildcard); the account
# is the topic's own (the statement's Resource).
SOURCE_ARNS = {
    "cloudwatch.amazonaws.com": re.compile(r"arn:aws[\w-]*:cloudwatch:[a-z0-9-]+:(\d{12}):alarm:[\w*.-]+"),
    "events.amazonaws.com": re.compile(r"arn:aws[\w-]*:events:[a-z0-9-]+:(\d{12}):rule/[\w.-]+"),
}
TOPIC_ARN_RE = re.compile(r"arn:aws[\w-]*:sns:[a-z0-9-]+:(\d{12}):[\w-]+")


def _publisher_problems(index: int, statement: Mapping[str, Any]) -> list[Violation]:
    principal = statement.get("Principal")
    service = principal.get("Service") if isinstance(principal, Mapping) else None
    if (
        statement.get("Effect") != "Allow"
        or statement.get("Action") != "sns:Publish"
        or not isinstance(principal, Mapping)
        or set(principal) != {"Service"}
        or service not in SOURCE_ARNS
        or set(statement) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
    ):
        return [
            f"topic policy statement {index}: only sns:Publish by {sorted(SOURCE_ARNS)} is allowed (the alarm topic's publishers)"
        ]
    topic = TOPIC_ARN_RE.fullmatch(str(statement.get("Resource")))
    condition = statement.get("Condition")
    tests = list(condition.items()) if isinstance(condition, Mapping) else []
    arns = [
        arn
        for operator, test in tests
        if operator in ("ArnEquals", "ArnLike") and isinstance(test, Mapping) and set(test) == {"aws:SourceArn"}
        for arn in as_list(test["aws:SourceArn"], "aws:SourceArn")
    ]
    matches = [SOURCE_ARNS[service].fullmatch(str(arn)) for arn in arns]
    if (
        topic is None
        or len(tests) != 1
        or not arns
        or not all(m and m.group(1) == topic.group(1) for m in matches)
        or service == "events.amazonaws.com"
        and (tests[0][0] != "ArnEquals" or any(c in str(a) for a in arns for c in "*?"))
    ):
        return [
            f"topic policy statement {index}: {service} publishes to one topic only with one aws:SourceArn condition naming "
            f"the topic's account's alarms (cloudwatch) or rules by their full ARN (events, ArnEquals), not {condition!r}"
        ]
    return []


def sns_topic_policy(review: Review) -> None:
    """The alarm topic's policy: sns:Publish for CloudWatch alarms and EventBridge rules of the topic's account, each
    limited by aws:SourceArn; nothing else (no other principal, no subscribe, no wildcard source). Parsed strictly
    (duplicate keys refused)."""

    def judge() -> list[Violation]:
        found = statements(review.resource.props.get("policy"), "policy")
        return [problem for index, statement in enumerate(found) for problem in _publisher_problems(index, statement)]

    review.judge(judge)


def event_target(review: Review) -> None:
    """An EventBridge rule may only notify the alarm topic (an SNS topic), never run code or call endpoints."""

    def judge() -> list[Violation]:
        arn = str(known(review.resource.props.get("arn"), "arn") or "")
        if arn.startswith("arn:") and arn.split(":")[2:3] == ["sns"]:
            return []
        return [f"an EventBridge target {arn!r}: the backup watch notifies the alarm topic (SNS) only"]

    review.judge(judge)


def sns_topic_subscription(review: Review) -> None:
    """alarmEmail: an e-mail subscription (its owner confirms it) to the stack's alarmEmail setting (review 22d B2b:
    components/aws/alarms.py endpoint=settings.alarm_email); nothing that forwards alarms to endpoints or code."""
    props = review.resource.props
    protocol = props.get("protocol")
    if protocol != "email":
        review.problems.append(f"an SNS subscription over {protocol!r}: alarms go to alarmEmail by e-mail only")

    def to_alarm_email() -> list[Violation]:
        endpoint, configured = known(props.get("endpoint"), "endpoint"), _stack_config("alarmEmail")
        if not configured or endpoint != configured:
            return [
                f"the alarm subscription sends to {endpoint!r}, not to the stack's alarmEmail ({configured or 'unset'!r}): "
                "alarms (host names, addresses, what broke) go to that address only; set alarmEmail"
            ]
        return []

    review.judge(to_alarm_email)


def s3_bucket(review: Review) -> None:
    """A private bucket that Pulumi does not empty on delete."""
    props = review.resource.props
    problems = []
    if props.get("acl") not in (None, "private"):
        problems.append(f"bucket ACL {props.get('acl')!r}: the bucket is private")
    for key in ("website", "policy", "grants", "corsRules"):
        if props.get(key):
            problems.append(f"the bucket sets {key}: the registry's bucket needs none (its policy is the TLS-only BucketPolicy)")
    if props.get("forceDestroy"):
        problems.append("force_destroy deletes every blob with the bucket: leave it off")
    review.problems += problems


def s3_bucket_policy(review: Review) -> None:
    """The bucket's policy only denies (the program's: no access without TLS); it never grants."""
    props = review.resource.props

    def only_denies() -> list[Violation]:
        if any(statement["Effect"] == "Allow" for statement in statements(props.get("policy"), "policy")):
            return ["the bucket policy grants access: it may only deny (the instance role's own policy grants the registry)"]
        return []

    review.judge(only_denies)


def s3_public_access_block(review: Review) -> None:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [key for key in keys if review.resource.props.get(key) is not True]
    if off:
        review.problems.append(f"the bucket's public access block leaves {off} off: set all four to true")


def s3_encryption(review: Review) -> None:
    rules = review.resource.props.get("rules") or []
    algorithms = [((rule or {}).get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") for rule in rules]
    if not algorithms or any(a not in ("AES256", "aws:kms", "aws:kms:dsse") for a in algorithms):
        review.problems.append("the bucket's default encryption is missing: set sse_algorithm AES256 (or aws:kms)")


def s3_ownership(review: Review) -> None:
    rule = review.resource.props.get("rule") or {}
    if rule.get("objectOwnership") != "BucketOwnerEnforced":
        review.problems.append("object ownership must be BucketOwnerEnforced (ACLs off)")


def s3_lifecycle(review: Review) -> None:
    """Only aborts incomplete uploads: an expiration or transition would delete or move the registry's blobs."""
    for index, rule in enumerate(review.resource.props.get("rules") or []):
        if any(
            rule.get(key) for key in ("expiration", "noncurrentVersionExpiration", "transitions", "noncurrentVersionTransitions")
        ):
            review.problems.append(f"lifecycle rule {index} expires or moves objects: only abort incomplete multipart uploads")


def rds_instance(review: Review) -> None:
    props = review.resource.props
    wanted = {"publiclyAccessible": False, "storageEncrypted": True, "deletionProtection": True, "skipFinalSnapshot": False}

    def settings() -> list[Violation]:
        # Unset means false for every one of them (the provider's defaults); unknown fails closed.
        wrong = [f"{key}={props.get(key)!r}" for key, value in wanted.items() if bool(known(props.get(key), key)) is not value]
        if wrong:
            return [
                f"the database sets {', '.join(wrong)}: it is private, encrypted, protected from deletion and snapshotted "
                "on delete"
            ]
        return []

    def made_from() -> list[Violation]:
        # Review 22d S2: what the database is created from. The program creates an empty one (components/aws/
        # data_services.py sets none of these); a snapshot of this account is looked up at up (aws_lookups.py
        # own_db_snapshot), any other source of data is refused: S3 files (s3Import), a replica of another database
        # (replicateSourceDb), a point-in-time restore of another instance (restoreToPointInTime).
        elsewhere = [key for key in RDS_DATA_SOURCES if known(props.get(key), key) not in (None, "", {}, [])]
        if elsewhere:
            return [
                f"the database sets {elsewhere}: Harbor's database is created empty (or restored from a snapshot of this "
                "account, snapshotIdentifier), never from S3 files, another database or another instance's backups"
            ]
        return []

    review.judge(settings)
    review.judge(made_from)


# pulumi-aws rds.Instance inputs that fill the new database with data from elsewhere.
RDS_DATA_SOURCES = ("s3Import", "replicateSourceDb", "restoreToPointInTime")


def elasticache_replication_group(review: Review) -> None:
    props = review.resource.props
    wrong = [key for key in ("transitEncryptionEnabled", "atRestEncryptionEnabled") if props.get(key) is not True]
    if wrong or not props.get("authToken"):
        review.problems.append(
            f"Redis must use TLS, encryption at rest and an AUTH token ({', '.join(wrong) or 'authToken'} missing)"
        )
    # "preferred" accepts plain-text clients too (pulumi-aws elasticache.ReplicationGroup transit_encryption_mode:
    # "preferred" or "required"). Unset, as the program leaves it: AWS applies "required" to a group created with
    # TransitEncryptionEnabled (ElastiCache API CreateReplicationGroup, TransitEncryptionMode).
    mode = props.get("transitEncryptionMode")
    if mode is not None and mode != "required":
        review.problems.append(
            f"Redis transitEncryptionMode is {mode!r}: it accepts plain-text clients; leave it unset or 'required'"
        )


def _stack_hostname() -> str:
    """The cache's name from the stack's configuration, which the engine hands the pack as PULUMI_CONFIG
    (pulumi pkg/engine/update.go: the decrypted stack config in PolicyAnalyzerOptions; analyzer_plugin.go
    constructConfig: a JSON object of "project:key" strings)."""
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        config = {}
    hostname = config.get(f"{PROJECT}:hostname") if isinstance(config, dict) else None
    if not isinstance(hostname, str) or not hostname:
        raise Undecidable("harbor_url", f"cannot be judged: the stack's configuration (PULUMI_CONFIG) has no {PROJECT}:hostname")
    return hostname.lower().rstrip(".")


def harbor_api_client(review: Review) -> None:
    """Harbor's objects (dynamic providers) send the admin password to `harbor_url`: only the cache's own
    name (https) or loopback (the SSH tunnel), as the settings allow for harborApiUrl."""
    props = review.resource.props

    def where() -> list[Violation]:
        url = urlsplit(str(known(props.get("harbor_url"), "harbor_url")))
        host = (url.hostname or "").lower()
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if url.scheme in ("http", "https") and loopback or url.scheme == "https" and host == _stack_hostname():
            return []
        return [
            f"{review.resource.name!r} would send Harbor's admin password to {url.scheme}://{host}: only to the cache's own "
            "name over https or to loopback (harborApiUrl through the SSH tunnel)"
        ]

    review.judge(where)


# The upstreams when the stack sets none, and the OIDC defaults (components/settings/upstreams.py DEFAULT_UPSTREAMS,
# components/settings/oidc.py OIDC_DEFAULTS; a test keeps them equal): what the program gives Harbor's registries and
# its OIDC login (components/harbor/config.py _registry, _oidc_props).
DEFAULT_UPSTREAMS: tuple[dict[str, str], ...] = (
    {"name": "dockerhub", "type": "docker-hub", "url": "https://hub.docker.com"},
    {"name": "ghcr", "type": "github-ghcr", "url": "https://ghcr.io"},
    {"name": "quay", "type": "docker-registry", "url": "https://quay.io"},
    {"name": "k8s", "type": "docker-registry", "url": "https://registry.k8s.io"},
    {"name": "gcr", "type": "docker-registry", "url": "https://gcr.io"},
)
OIDC_DEFAULTS = {"adminGroup": "cluster_admins", "groupsClaim": "groups", "verifyCert": True}


def harbor_registry(review: Review) -> None:
    """Where the admin password goes (harbor_api_client), and where Harbor itself sends the upstream's credential
    (access_key/access_secret on every ping and pull, review 22d H1): the registry named like an entry of the stack's
    `upstreams` setting (its defaults where unset) has that entry's `url` and `type`, `insecure` only where the entry
    sets it, and a `ca_certificate` only the entry's."""
    harbor_api_client(review)
    props = review.resource.props

    def upstream() -> list[Violation]:
        name = known(props.get("name"), "name")
        configured = _stack_config("upstreams")
        upstreams = DEFAULT_UPSTREAMS if configured is None else configured
        listed = upstreams if isinstance(upstreams, list | tuple) else []
        entries = [u for u in listed if isinstance(u, Mapping) and u.get("name") == name]
        if len(entries) != 1:
            return [
                f"Harbor registry {review.resource.name!r} is named {name!r}, which is no entry of the stack's upstreams "
                f"setting ({PROJECT}:upstreams, or its defaults): Harbor's registries are the settings' upstreams only"
            ]
        entry = entries[0]
        wanted = {
            "url": harbor_url_form(str(entry.get("url", ""))),  # as the registry's check hands it (review 22e)
            "type": entry.get("type"),
            "insecure": entry.get("insecure") is True,
            "ca_certificate": entry.get("caCertificate") or "",
        }
        found = {
            "url": known(props.get("url"), "url"),
            "type": known(props.get("type"), "type"),
            "insecure": known(props.get("insecure"), "insecure") or False,
            "ca_certificate": known(props.get("ca_certificate"), "ca_certificate") or "",
        }
        wrong = sorted(key for key in wanted if found[key] != wanted[key] and not (key == "insecure" and not found[key]))
        if wrong:
            shown = {key: found[key] for key in wrong if key != "ca_certificate"}
            return [
                f"Harbor registry {name!r} sets {wrong} ({shown}) unlike the stack's upstreams entry {name!r}: Harbor sends the "
                "upstream's credential to that url (and trusts that certificate); set them in the upstreams setting, which "
                "the program passes through"
            ]
        return []

    review.judge(upstream)


def harbor_url_form(url: str) -> str:
    """An upstream's URL as the program's registry provider puts it before the engine sees it (its check:
    components/harbor/registry.py harbor_url_form, after Harbor's src/lib/endpoint.go ValidateHTTPURL): spaces and
    trailing slashes trimmed, the scheme lower-cased, `http://` where none, user info dropped. The pack cannot import
    the program; tests/policy/test_fields.py keeps the two equal."""
    text = url.strip(" ").rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def harbor_oidc_auth(review: Review) -> None:
    """Where the admin password goes (harbor_api_client), and whom Harbor trusts as admin (review 22d H1): Harbor sends
    its OIDC client secret to `oidc_endpoint` and makes admin whoever that issuer puts in `oidc_admin_group` of the
    groups claim; all as the stack's `oidc` setting gives them (components/harbor/config.py _oidc_props: issuer without
    a trailing slash, adminGroup, groupsClaim), and the issuer's certificate verified unless the setting says
    verifyCert: false."""
    harbor_api_client(review)
    props = review.resource.props

    def issuer() -> list[Violation]:
        oidc = _stack_config("oidc")
        if not isinstance(oidc, Mapping):
            return [f"Harbor's OIDC login {review.resource.name!r} is configured, but the stack sets no {PROJECT}:oidc"]
        merged = {**OIDC_DEFAULTS, **oidc}
        wanted = {
            "oidc_endpoint": str(merged.get("issuer", "")).rstrip("/"),
            "oidc_admin_group": merged["adminGroup"],
            "oidc_groups_claim": merged["groupsClaim"],
        }
        wrong = {key: props.get(key) for key, value in wanted.items() if known(props.get(key), key) != value}
        verify = known(props.get("oidc_verify_cert"), "oidc_verify_cert")
        if verify is not True and merged["verifyCert"] is not False:
            wrong["oidc_verify_cert"] = verify
        if wrong:
            return [
                f"Harbor's OIDC login sets {wrong}, not as the stack's oidc setting gives them ({wanted}, verifyCert "
                f"{merged['verifyCert']!r}): Harbor sends its client secret to that issuer and makes admin whom it names; "
                "set them in the oidc setting, which the program passes through"
            ]
        return []

    review.judge(issuer)


def remote_command(review: Review) -> None:
    """Only the program's installer, probe and CAA commands; no credential outside stdin, and SSH only to a
    pinned host key without a password. To which host and key: stack check `remote-commands-reach-the-programs-vms`.

    Pulumi's Python policy SDK hands policies unwrapped values, so a policy cannot see whether a
    value is marked secret; the rule is therefore the stronger one: nothing that looks like a
    credential in those fields at all. Secrets go on stdin (marked secret by the program).
    """
    props = review.resource.props
    if not any(review.resource.made_by(owner, r"[\w.-]+") for owner in COMMAND_OWNERS):
        review.problems.append(
            f"remote command {review.resource.name!r} is not under the program's {', '.join(COMMAND_OWNERS)}: "
            "harbor-cache runs remote commands only from those components, on its own VMs"
        )

    def credentials() -> list[Violation]:
        for name in COMMAND_FIELDS:
            if _credential_in(props.get(name), name):
                return [
                    f"the remote command's {name} carries what looks like a password or token: "
                    "pass it on stdin as a Pulumi secret instead"
                ]
        return []

    def connection() -> list[Violation]:
        connection = known(props.get("connection"), "connection") or {}
        problems = []
        host_key = known(connection.get("hostKey"), "connection.hostKey")
        if not isinstance(host_key, str) or not host_key.strip():
            # pulumi-command accepts any host key without one (provider/pkg/provider/remote/connection.go:
            # ssh.InsecureIgnoreHostKey unless hostKey is set).
            problems.append(
                "the SSH connection has no host_key: pin the VM's key (ConsoleHostKey) so no secret goes to an unverified host"
            )
        if connection.get("password") or connection.get("proxy"):
            problems.append("the SSH connection uses a password or a proxy: connect with the stack's key, directly")
        return problems

    review.judge(credentials)
    review.judge(connection)


def ec2_eip(review: Review) -> None:
    """The program associates its EIPs through EipAssociation (whose instance and allocation the stack check
    `identities-come-from-the-program` compares); an EIP's own instance or network interface would attach the
    cache's address elsewhere unseen."""
    props = review.resource.props

    def attached() -> list[Violation]:
        set_here = [key for key in ("instance", "networkInterface") if known(props.get(key), key)]
        if set_here:
            return [
                f"the Elastic IP sets {set_here}: it is attached only by the program's EipAssociation to the program's "
                "instance; remove them"
            ]
        return []

    review.judge(attached)


def ec2_eip_association(review: Review) -> None:
    """The association routes the stack's EIP (the remote commands' host) to an instance: the program sets
    allocationId and instanceId only (components/aws/vm.py); a network interface, a public IP or a private address
    would send the cache's address (and the commands' stdin) to whatever holds them, which no lookup of the
    instance sees (review 22c F1). instanceId is looked up as the stack's instance at up (aws_lookups.py)."""
    props = review.resource.props

    def onto_the_instance() -> list[Violation]:
        elsewhere = [key for key in ("networkInterfaceId", "publicIp", "privateIpAddress") if props.get(key) not in (None, "")]
        problems = []
        if elsewhere:
            problems.append(
                f"the Elastic IP association sets {elsewhere}: the program associates its EIP by allocationId with its "
                "instance (instanceId) only; remove them"
            )
        if props.get("instanceId") in (None, ""):
            problems.append("the Elastic IP association names no instanceId: pass the program's instance (instance.id)")
        return problems

    review.judge(onto_the_instance)


def acm_certificate(review: Review) -> None:
    """The load balancer's certificate is one ACM issues after DNS validation for the stack's hostname
    (components/aws/load_balancer.py: domain_name and validation_method="DNS"). An imported certificate (privateKey,
    certificateBody, certificateChain) is one whose key someone outside AWS holds, and a private CA's
    (certificateAuthorityArn) one that CA's holders can issue again: either lets them read and change the cache's
    traffic (review 22c, minor)."""
    props = review.resource.props

    def issued_by_acm() -> list[Violation]:
        problems = []
        imported = [key for key in IMPORTED_CERTIFICATE_FIELDS if props.get(key) not in (None, "")]
        if imported:
            problems.append(
                f"the certificate sets {imported}: the program's certificate is issued by ACM after DNS validation, "
                "never imported or from a private CA; remove them"
            )
        method = props.get("validationMethod")
        if is_unknown(method) or method != "DNS":
            problems.append(f"the certificate's validationMethod is {method!r}: the program validates by DNS; set \"DNS\"")
        # The certificate names the cache and nothing else (components/aws/load_balancer.py domain_name=hostname, no
        # subjectAlternativeNames: fields.py refuses those): a wildcard or another name would have ACM issue, and the
        # stack validate, a certificate for names the stack does not serve (review 22g F2). ACM compares names without
        # case and Route 53 stores them lower-case without the final dot, as _stack_hostname() answers.
        domain = props.get("domainName")
        if is_unknown(domain) or not isinstance(domain, str) or domain.lower().rstrip(".") != _stack_hostname():
            problems.append(
                f"the certificate's domainName is {domain!r}: it names the stack's hostname only "
                f"({_stack_hostname()!r}, the hostname setting)"
            )
        return problems

    review.judge(issued_by_acm)


# What an ACM certificate resource imports instead of having ACM issue it (pulumi-aws acm.Certificate inputs).
IMPORTED_CERTIFICATE_FIELDS = ("privateKey", "certificateBody", "certificateChain", "certificateAuthorityArn")


# ---------------------------------------------------------------------------------------------
# Generated secrets (review 22f B1, L3): each of the program's by its name (owner component, name part, as
# Resource.made_by matches them: node-indexed HarborInstall names included), no weaker than the program makes it. The
# numbers are copies of the program's constants (components/vm/shared_secrets.py, components/vm/secret_values.py,
# components/aws/data_services.py, components/harbor/config.py); tests/policy/test_policies.py keeps them equal.
# A generated secret of any other name is refused: the pack does not know what it protects.
#
# pulumi-random 4.21.4 and pulumi-tls 5.6.2 are Plugin Framework providers whose Check fills no Terraform default
# (policy/provider_defaults.py), so a field the program leaves out reaches the pack absent and the provider's schema
# default applies when it creates the value. terraform-provider-random internal/provider/resource_password.go
# passwordSchemaV3: `length` is the number of characters of the result ("The length of the string desired"),
# `special`, `upper`, `lower`, `numeric`/`number` default to true, `min_upper`/`min_lower`/`min_numeric`/`min_special`
# to 0, and `override_special` replaces the special characters only where `special` is true; Create hands them all
# to random.CreateString. internal/provider/resource_bytes.go bytesSchemaV0: `length` is "The number of bytes
# requested". terraform-provider-tls internal/provider/resource_private_key.go privateKeyResourceSchemaV1: `rsa_bits`
# defaults to 2048.


@dataclass(frozen=True)
class PasswordFloor:
    """A RandomPassword of the program: at least `length` characters and the least of each class, letters and digits
    only (the values pass through YAML, env files and compose unharmed: components/vm/shared_secrets.py)."""

    length: int
    min_upper: int = 0
    min_lower: int = 0
    min_numeric: int = 0


# components/vm/shared_secrets.py
ADMIN_PASSWORD_LENGTH = 24
ADMIN_PASSWORD_MIN_EACH = 2
SECRET_KEY_LENGTH = 16
COMPONENT_SECRET_LENGTH = 16
CSRF_KEY_LENGTH = 32
REGISTRY_HTTP_SECRET_LENGTH = 32
SCAN_ROBOT_PREFIX_LENGTH = 8
TOKEN_KEY_ALGORITHM, TOKEN_KEY_BITS = "RSA", 4096
TOKEN_CERT_VALIDITY_HOURS = 3650 * 24
# `is_ca_certificate=True`, `allowed_uses=["digital_signature", "cert_signing"]`: prepare's `req -x509` (v3_ca).
TOKEN_CERT_USES = ("digital_signature", "cert_signing")
# components/vm/secret_values.py (each node's, components/vm/install.py)
DATABASE_PASSWORD_LENGTH = 32
# components/aws/data_services.py
STORE_PASSWORD_LENGTH = 32
STORE_PASSWORD_MIN_EACH = 2
# components/harbor/config.py
OIDC_CLIENT_SECRET_BYTES = 20

_ADMIN = PasswordFloor(ADMIN_PASSWORD_LENGTH, ADMIN_PASSWORD_MIN_EACH, ADMIN_PASSWORD_MIN_EACH, ADMIN_PASSWORD_MIN_EACH)
_STORE = PasswordFloor(STORE_PASSWORD_LENGTH, STORE_PASSWORD_MIN_EACH, STORE_PASSWORD_MIN_EACH, STORE_PASSWORD_MIN_EACH)
# (owner component, name part) -> the floor.
RANDOM_PASSWORDS: dict[tuple[str, str], PasswordFloor] = {
    # The single VM's (and node 0's) Harbor admin password, and every node's own Harbor database password.
    ("HarborInstall", "admin-password"): _ADMIN,
    ("HarborInstall", "database-password"): PasswordFloor(DATABASE_PASSWORD_LENGTH),
    # HA: the values every node shares.
    ("HarborSharedSecrets", "admin-password"): _ADMIN,
    ("HarborSharedSecrets", "secret-key"): PasswordFloor(SECRET_KEY_LENGTH),
    ("HarborSharedSecrets", "core-secret"): PasswordFloor(COMPONENT_SECRET_LENGTH),
    ("HarborSharedSecrets", "jobservice-secret"): PasswordFloor(COMPONENT_SECRET_LENGTH),
    ("HarborSharedSecrets", "csrf-key"): PasswordFloor(CSRF_KEY_LENGTH),
    ("HarborSharedSecrets", "registry-http-secret"): PasswordFloor(REGISTRY_HTTP_SECRET_LENGTH),
    ("HarborSharedSecrets", "scan-robot-prefix"): PasswordFloor(SCAN_ROBOT_PREFIX_LENGTH),
    # externalServices: the RDS master password and the ElastiCache AUTH token.
    ("HarborDataServices", "db-password"): _STORE,
    ("HarborDataServices", "redis-password"): _STORE,
}
RANDOM_BYTES: dict[tuple[str, str], int] = {("HarborConfig", "oidc-client-secret"): OIDC_CLIENT_SECRET_BYTES}
# (owner, part) -> (algorithm, least RSA bits or None).
PRIVATE_KEYS: dict[tuple[str, str], tuple[str, int | None]] = {
    ("HarborVm", "ssh-key"): ("ED25519", None),  # components/aws/vm.py: tls.PrivateKey(algorithm="ED25519")
    ("HarborSharedSecrets", "token-key"): (TOKEN_KEY_ALGORITHM, TOKEN_KEY_BITS),
}
TOKEN_CERT: tuple[str, str] = ("HarborSharedSecrets", "token-cert")
# The stack's SSH key's public half in the key pair (ec2_key_pair).
SSH_PUBLIC_KEY_PREFIX = "ssh-ed25519 "


def _known_as(table: dict[tuple[str, str], Any], resource: Resource) -> tuple[str, str] | None:
    return next((key for key in table if resource.made_by(*key)), None)


def _unknown_secret(resource: Resource, table: dict[tuple[str, str], Any]) -> Violation:
    names = sorted(f"{PROGRAM_COMPONENTS[owner]}-{part} (under {owner})" for owner, part in table)
    return (
        f"{resource.type} {resource.name!r} is not one of the program's generated secrets ({', '.join(names)}): the "
        "pack floors each by its name and refuses one it does not know; add it to policy/resource_checks.py with the "
        "strength the program gives it"
    )


def _count(props: Mapping[str, Any], key: str, default: int = 0) -> float:
    """A number field, or the provider's schema default where the program leaves it out."""
    return number(props.get(key), key, default)


def random_password(review: Review) -> None:
    """One of the program's generated passwords, by its name, at least as long as the program makes it, with at least
    its letters of each class, and letters and digits only (special false, no class turned off)."""
    resource = review.resource
    known_as = _known_as(RANDOM_PASSWORDS, resource)
    if known_as is None:
        review.problems.append(_unknown_secret(resource, RANDOM_PASSWORDS))
        return
    floor, props = RANDOM_PASSWORDS[known_as], resource.props

    def strength() -> list[Violation]:
        problems = []
        length = number(props.get("length"), "length")
        if length < floor.length:
            problems.append(
                f"the password {resource.name!r} is {length:g} characters long: the program makes it {floor.length}; "
                "a shorter one is easier to guess"
            )
        for key, least in (("minUpper", floor.min_upper), ("minLower", floor.min_lower), ("minNumeric", floor.min_numeric)):
            if (found := _count(props, key)) < least:
                problems.append(f"the password {resource.name!r} has {key} {found:g} (absent: 0): the program asks {least}")
        return problems

    def alphabet() -> list[Violation]:
        problems = []
        if known(props.get("special"), "special") is not False:
            problems.append(
                f"the password {resource.name!r} has special={props.get('special')!r} (absent, pulumi-random's default is "
                "true): the program's are letters and digits, set special=False"
            )
        off = [key for key in ("upper", "lower", "numeric", "number") if known(props.get(key), key) is False]
        if off:
            problems.append(f"the password {resource.name!r} turns {off} off: the program keeps letters and digits")
        return problems

    review.judge(strength)
    review.judge(alphabet)


def random_bytes(review: Review) -> None:
    """One of the program's generated secrets of random bytes (the OIDC client secret), by its name, at least as
    many bytes as the program draws."""
    resource = review.resource
    known_as = _known_as(RANDOM_BYTES, resource)
    if known_as is None:
        review.problems.append(_unknown_secret(resource, RANDOM_BYTES))
        return

    def size() -> list[Violation]:
        length, least = number(resource.props.get("length"), "length"), RANDOM_BYTES[known_as]
        if length < least:
            return [f"the secret {resource.name!r} is {length:g} random bytes: the program draws {least}"]
        return []

    review.judge(size)


def tls_private_key(review: Review) -> None:
    """One of the program's keys, by its name: the stack's SSH key (HarborVm's ssh-key) ED25519; Harbor's token
    signing key (HarborSharedSecrets' token-key) RSA of at least the program's size, as prepare makes it."""
    resource = review.resource
    known_as = _known_as(PRIVATE_KEYS, resource)
    if known_as is None:
        review.problems.append(_unknown_secret(resource, PRIVATE_KEYS))
        return
    algorithm, least_bits = PRIVATE_KEYS[known_as]

    def strength() -> list[Violation]:
        found = known(resource.props.get("algorithm"), "algorithm")
        if found != algorithm:
            return [f"the key {resource.name!r} is {found!r}: the program's is {algorithm}; use {algorithm}"]
        if least_bits is not None:
            bits = _count(resource.props, "rsaBits", 2048)  # absent: tls_private_key's default, 2048
            if bits < least_bits:
                return [
                    f"the key {resource.name!r} has {bits:g} RSA bits: the program's has {least_bits}; set rsa_bits={least_bits}"
                ]
        return []

    review.judge(strength)


def tls_self_signed_cert(review: Review) -> None:
    """Harbor's token service certificate (HarborSharedSecrets' token-cert), the only self-signed certificate: every
    HA node's registry trusts it to verify the bearer tokens core signs; a CA certificate for digital signatures and
    certificate signing, valid as long as prepare makes it. Made from the token key: stack check
    identities-come-from-the-program (its privateKeyPem is a Reference, policy/fields.py)."""
    resource = review.resource
    if not resource.made_by(*TOKEN_CERT):
        review.problems.append(_unknown_secret(resource, {TOKEN_CERT: None}))
        return
    props = resource.props

    def shape() -> list[Violation]:
        problems = []
        if known(props.get("isCaCertificate"), "isCaCertificate") is not True:
            problems.append(f"the token certificate {resource.name!r} is not a CA certificate: set is_ca_certificate=True")
        uses = as_list(props.get("allowedUses"), "allowedUses")
        if sorted(map(str, uses)) != sorted(TOKEN_CERT_USES):
            problems.append(
                f"the token certificate {resource.name!r} allows {uses}: the program's allows {list(TOKEN_CERT_USES)}"
            )
        hours = number(props.get("validityPeriodHours"), "validityPeriodHours")
        if hours < TOKEN_CERT_VALIDITY_HOURS:
            problems.append(
                f"the token certificate {resource.name!r} is valid {hours:g} hours: the program's {TOKEN_CERT_VALIDITY_HOURS}; "
                "once it expires no node's registry accepts a token"
            )
        return problems

    review.judge(shape)


def ec2_key_pair(review: Review) -> None:
    """The key pair holds an ED25519 public key (OpenSSH's type prefix); whose key: stack check."""
    props = review.resource.props

    def algorithm() -> list[Violation]:
        key = str(known(props.get("publicKey"), "publicKey"))
        if not key.startswith(SSH_PUBLIC_KEY_PREFIX):
            return [f"the key pair's public key is {key.split(' ')[0]!r}, not ED25519: use the stack's ED25519 SSH key"]
        return []

    review.judge(algorithm)


def _stack_config(key: str) -> Any:
    """A value of the stack's configuration as the engine passes it (PULUMI_CONFIG; structured values as JSON text)."""
    try:
        config = json.loads(os.environ.get("PULUMI_CONFIG") or "{}")
        value = config.get(f"{PROJECT}:{key}") if isinstance(config, dict) else None
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
    except ValueError:
        return None


def credentialed_public_allowed(upstream: str) -> bool:
    """Whether the stack's configuration allows `upstream`'s project to be public with its credential
    (components/settings/upstreams.py: allowCredentialedPublic on that upstream)."""
    upstreams = _stack_config("upstreams")
    return isinstance(upstreams, list) and any(
        isinstance(item, Mapping) and item.get("name") == upstream and item.get("allowCredentialedPublic") is True
        for item in upstreams
    )


# What the program's robots may do (components/harbor/config.py): the monitor robot lists registries and GC
# results (MONITOR_ACCESS) and, in the proxy projects, retention runs (MONITOR_PROJECT_ACCESS); the pull robot has no
# system access and in its projects the provider's default (project_access unset: components/harbor/robot.py
# PROJECT_ACCESS, repository pull and artifact read).
ROBOT_SYSTEM_ACCESS = {("registry", "list"), ("garbage-collection", "list")}
ROBOT_PROJECT_ACCESS = {("repository", "pull"), ("artifact", "read"), ("tag-retention", "list")}
# Harbor's project names (src/common/utils/utils.go ValidateProjectName... lower case, digits, ._- inside).
HARBOR_PROJECT_NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


def harbor_robot(review: Review) -> None:
    """Where the password goes (harbor_api_client); a robot with at most the program's robots' system and project
    access, in named projects, no wildcard."""
    harbor_api_client(review)
    props = review.resource.props

    def pairs(key: str) -> set[tuple[str, str]]:
        return {
            (str(a.get("resource")), str(a.get("action"))) if isinstance(a, Mapping) else ("?", "?")
            for a in as_list(props.get(key), key)
        }

    def access() -> list[Violation]:
        projects = as_list(props.get("projects"), "projects")
        problems = []
        for key, allowed in (("system_access", ROBOT_SYSTEM_ACCESS), ("project_access", ROBOT_PROJECT_ACCESS)):
            if not pairs(key) <= allowed:
                problems.append(
                    f"robot {review.resource.name!r} has {key} {sorted(pairs(key))}: at most {sorted(allowed)} (what the "
                    "program's robots are given)"
                )
        if not all(isinstance(p, str) and HARBOR_PROJECT_NAME_RE.fullmatch(p) for p in projects):
            problems.append(f"robot {review.resource.name!r} names projects {projects!r}: only project names, no wildcard")
        return problems

    review.judge(access)


def harbor_system_settings(review: Review) -> None:
    """Where the password goes (harbor_api_client); no self-registration, projects made by admins only,
    and the robot name prefix kept at `robot$`, the one the nodes' robot logs in under
    (components/harbor/config.py, components/harbor/system_settings.py)."""
    harbor_api_client(review)
    props = review.resource.props

    def pinned() -> list[Violation]:
        wanted = {"self_registration": False, "project_creation_restriction": "adminonly", "robot_name_prefix": "robot$"}
        wrong = {key: props.get(key) for key, value in wanted.items() if known(props.get(key), key) != value}
        return [f"Harbor's system settings set {wrong}: the cache keeps {wanted}"] if wrong else []

    review.judge(pinned)


def rds_snapshot(review: Review) -> None:
    """The upgrade's snapshot of the database stays in the account: shared with no other account (and never "all")."""

    def kept() -> list[Violation]:
        accounts = as_list(review.resource.props.get("sharedAccounts"), "sharedAccounts")
        return [f"the database snapshot is shared with {accounts}: it stays in this account"] if accounts else []

    review.judge(kept)


# ---------------------------------------------------------------------------------------------
# The dashboard (components/aws/dashboard.py): the stack's own, showing what the program shows


def dashboard_name_of(stack: str, organization: str | None, project: str) -> str:
    """A copy of components/aws/dashboard.py dashboard_name_of (tests/policy/test_bypass_acm_dashboard.py keeps the
    two equal): dashboard names are one namespace per account and region, and PutDashboard of a taken name replaces
    that dashboard ("If a dashboard with this name already exists, this call modifies that dashboard, replacing its
    entire contents", CloudWatch API Reference, PutDashboard), so the program's is the stack's name plus a hash of
    organization/project/stack."""
    import hashlib

    digest = hashlib.sha256(f"{organization}/{project}/{stack}".encode()).hexdigest()[:8]
    readable = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"harbor-cache-{stack}")[:240]
    return f"{readable}-{digest}"


def stack_organization() -> str | None:
    """The organization the program's pulumi.get_organization() answers: the engine hands the program and the pack the
    one update target's organization (pulumi pkg/resource/deploy/source_eval.go RunRequest Organization, pkg/engine/
    update.go PolicyAnalyzerOptions Organization; a DIY backend's is "organization"), the pack as PULUMI_ORGANIZATION
    only when it is not empty (sdk/go/common/resource/plugin/analyzer_plugin.go constructEnv maybeAppendEnv), as the
    Python language host passes `--organization` only when it is not empty (sdk/python/cmd/pulumi-language-python
    main.go maybeAppendArg), and the program's SDK then answers None."""
    return os.environ.get("PULUMI_ORGANIZATION") or None


# What the program's dashboard body holds (components/aws/dashboard.py cloudwatch_body, "Dashboard Body Structure and
# Syntax", CloudWatch API Reference): `widgets` only, each of these keys, of the program's types with the properties
# it sets. Any other type is refused: a `custom` widget invokes a Lambda function of the account when someone opens the
# dashboard (review 22f L1), `log` widgets query log groups, `explorer` widgets other resources.
DASHBOARD_BODY_KEYS = {"widgets"}
DASHBOARD_WIDGET_KEYS = {"type", "x", "y", "width", "height", "properties"}
DASHBOARD_WIDGET_PROPERTIES = {
    "metric": {"title", "view", "stacked", "period", "metrics", "region", "yAxis"},
    "text": {"markdown"},
    "alarm": {"title", "alarms"},
}
# The program's metric math is arithmetic over its own series (`100 * (1 - m0 / r0)`): ids, numbers, + - * / and
# parentheses. Any function is refused, LAMBDA above all: `LAMBDA("function", ...)` calls a Lambda function of the
# account as a data source whenever the widget is drawn (CloudWatch User Guide, "Use your custom data source"), as do
# SEARCH and Metrics Insights queries over other metrics, which the program does not use.
METRIC_MATH_RE = re.compile(r"[A-Za-z0-9_.\s+\-*/()]*")
METRIC_MATH_CALL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*\(")


def _dashboard_widget_problems(index: int, widget: Any) -> list[Violation]:
    if not isinstance(widget, Mapping):
        return [f"the dashboard's widget {index} is {type(widget).__name__}, not a widget object"]
    kind = widget.get("type")
    if kind not in DASHBOARD_WIDGET_PROPERTIES:
        return [
            f"the dashboard's widget {index} is of type {kind!r}: the program's dashboard shows only "
            f"{sorted(DASHBOARD_WIDGET_PROPERTIES)} widgets (a custom widget runs a Lambda function for whoever opens it); "
            "remove it"
        ]
    problems = []
    extra = sorted(set(widget) - DASHBOARD_WIDGET_KEYS)
    properties = widget.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    extra += sorted(f"properties.{key}" for key in set(properties) - DASHBOARD_WIDGET_PROPERTIES[kind])
    if extra:
        problems.append(f"the dashboard's {kind} widget {index} sets {extra}, which the program's widgets do not; remove them")
    rows = properties.get("metrics") if kind == "metric" else []
    for row in rows if isinstance(rows, list) else [rows]:
        for item in row if isinstance(row, list) else [row]:
            expression = item.get("expression") if isinstance(item, Mapping) else None
            if expression is None:
                continue
            text = str(expression)
            if not METRIC_MATH_RE.fullmatch(text) or METRIC_MATH_CALL_RE.search(text):
                problems.append(
                    f"the dashboard's widget {index} computes {text!r}: the program's metric math is arithmetic over its "
                    "own series only (no function: LAMBDA calls a Lambda function, SEARCH and SELECT read other metrics)"
                )
    return problems


def cloudwatch_dashboard(review: Review) -> None:
    """The program's one dashboard (HarborDashboard's `harbor-dashboard`): named as the program names it for this
    stack (dashboard_name_of; another name replaces, and `pulumi destroy` deletes, a dashboard that is not the
    stack's), its body JSON of the program's widget types only (metric, text, alarm) with plain arithmetic metric
    math. Unparseable fails closed; unknown at preview only on the program's dashboard (reading.py KNOWN_ONLY_AT_UP),
    judged at `up` before the step."""
    resource = review.resource
    props = resource.props

    def programs_name() -> list[Violation]:
        urn = Urn.parse(resource.urn)
        if urn is None or not resource.made_by("HarborDashboard", ""):
            return [
                f"dashboard {resource.name!r} is not the program's (harbor-dashboard under HarborDashboard): harbor-cache "
                "makes one dashboard per stack; remove it"
            ]
        name = str(known(props.get("dashboardName"), "dashboardName"))
        wanted = dashboard_name_of(urn.stack, stack_organization(), urn.project)
        if name != wanted:
            return [
                f"the dashboard is named {name!r}, not the stack's own {wanted!r} (components/aws/dashboard.py "
                "dashboard_name_of): PutDashboard would replace that dashboard and `pulumi destroy` delete it; use the "
                "program's name"
            ]
        return []

    def body() -> list[Violation]:
        text = known(props.get("dashboardBody"), "dashboardBody")
        try:
            parsed = json.loads(str(text), object_pairs_hook=_no_duplicate_keys)
        except ValueError as error:
            raise Undecidable("dashboardBody", f"is not a JSON dashboard body ({error})") from None
        if not isinstance(parsed, Mapping) or set(parsed) - DASHBOARD_BODY_KEYS or not isinstance(parsed.get("widgets"), list):
            keys = sorted(parsed) if isinstance(parsed, Mapping) else type(parsed).__name__
            raise Undecidable("dashboardBody", f"is not a body of widgets only (it has {keys})")
        widgets = enumerate(parsed["widgets"])
        return [problem for index, widget in widgets for problem in _dashboard_widget_problems(index, widget)]

    review.judge(programs_name)
    review.judge(body)
