"""HarborStorage: the S3 bucket Harbor's registry keeps image blobs in (`storage: s3`, issue 13 step 1).

The registry (distribution's s3 driver) reaches the bucket through the VM's instance role: with no
accesskey/secretkey in its config it takes the instance's temporary credentials from IMDS
(distribution docs/content/storage-drivers/s3.md, "Parameters"). So do registryctl, which deletes
blobs with the same driver for garbage collection. The registry's SDK (aws-sdk-go 1.15.11) cannot
ask IMDS for a token, so both get the credentials from a relay on the host that only their two
fixed addresses reach (components/vm/imds_guard.py, imds_relay.py; tests/vm/test_registry_s3.py);
the VM keeps IMDSv2 required with hop limit 1. The role's policy is that document's
"S3 permission scopes", scoped to this one bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.tagging import resource_tags
from components.settings.settings import Settings

# Uploads the registry abandons (a client that went away mid-push, a proxy fetch cut short) leave
# multipart parts that S3 bills until aborted. Harbor's own upload purging works on the registry's
# _uploads folder and runs every 24h for uploads older than 168h (harbor.yml upload_purging); the
# bucket rule is the backstop for parts the registry no longer knows about, with the same 7 days.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7

# distribution docs/content/storage-drivers/s3.md, "S3 permission scopes": what the registry needs
# for push and pull, on the bucket and on its objects.
BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
OBJECT_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload")


@dataclass(frozen=True)
class HarborStorageArgs:
    settings: Settings
    # The VM's instance role: the only principal given access to the bucket.
    instance_role_name: pulumi.Input[str]


def tls_only_policy(bucket_arn: str) -> str:
    """Bucket policy: every request without TLS is denied, whoever makes it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyWithoutTls",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def registry_policy(bucket_arn: str) -> str:
    """The instance role's access: distribution's documented actions, on this bucket only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "RegistryBucket", "Effect": "Allow", "Action": list(BUCKET_ACTIONS), "Resource": bucket_arn},
                {"Sid": "RegistryObjects", "Effect": "Allow", "Action": list(OBJECT_ACTIONS), "Resource": f"{bucket_arn}/*"},
            ],
        }
    )


class HarborStorage(pulumi.ComponentResource):
    """A private, encrypted, TLS-only bucket; unversioned on purpose (see below)."""

    def __init__(self, name: str, args: HarborStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("harbor-cache:index:HarborStorage", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # A name prefix, not a fixed name: bucket names are global, and a replacement must not
        # wait for the old name. Not force_destroy: `pulumi destroy` stops at a non-empty bucket
        # instead of deleting the cache's blobs without a word.
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix="harbor-cache-",
            tags=resource_tags(settings, f"{name}-bucket"),
            opts=child,
        )
        bucket_ref = pulumi.ResourceOptions(parent=self, depends_on=[self.bucket])
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=bucket_ref,
        )
        # SSE-S3 (AES256): encryption at rest without a KMS key policy to keep in step with the role
        # and without per-request KMS charges on every blob read.
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=bucket_ref,
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=bucket_ref,
        )
        # Versioning stays off: the bucket holds a cache that refills from the upstreams, and
        # versions would keep every blob Harbor's garbage collection deletes, billed forever.
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_INCOMPLETE_UPLOAD_DAYS},
                }
            ],
            opts=bucket_ref,
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(tls_only_policy),
            # The public access block first: a policy put before it could race its evaluation.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-registry-access",
            role=args.instance_role_name,
            policy=self.bucket.arn.apply(registry_policy),
            opts=child,
        )

        self.bucket_name = self.bucket.bucket
        self.register_outputs({"bucket": self.bucket_name, "bucketArn": self.bucket.arn})
