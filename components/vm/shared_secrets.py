"""HarborSharedSecrets: what every Harbor node must hold identically in HA mode (replicas > 1).

Harbor's installer runs `prepare` on each node, and prepare (goharbor/harbor v2.15.2, make/photon/prepare,
copy in ../shared/reference/harbor-v2.15.2-prepare) generates these per node; several nodes behind one
load balancer, sharing one database and one Redis, would then disagree. Each is generated once here and
laid on every node (components/vm/install.py, shared_secret_files / shared_secret_environment):

- secretkey (16 chars): prepare's get_secret_key (utils/cert.py, `_get_secret(..., "secretkey")`) loads
  /data/secret/keys/secretkey when it exists, else makes one; core encrypts the registry credentials it
  stores in the (shared) database with it. MUST be shared: a credential saved through node A is
  unreadable on node B otherwise.
- token signing key + certificate: prepare_registry_ca (utils/cert.py) keeps /data/secret/core/private_key.pem
  and /data/secret/registry/root.crt when both exist, else `openssl genrsa 4096` + `req -x509 -days 3650
  -subj /` (create_root_cert). A token core signs on one node is checked by another node's registry
  (registry/config.yml.jinja `auth.token.rootcertbundle: /etc/registry/root.crt`): MUST be shared.
- CORE_SECRET / JOBSERVICE_SECRET (16 chars): utils/configs.py parse_yaml_config
  (`generate_random_string(16)` on every run), written to core/env, jobservice/env, registryctl/env.
  Jobs queued in the shared Redis by one node's core run on any node's jobservice, which calls core
  back with JOBSERVICE_SECRET and core checks it against its own: shared.
- CSRF_KEY (32 chars): utils/core.py prepare_core (`csrf_key=generate_random_string(32)`) -> core/env.
  The portal's CSRF token from node A must verify on node B behind the load balancer: shared.
- REGISTRY_HTTP_SECRET: templates/registry/config.yml.jinja writes `http.secret: placeholder`, the
  same public word on every node. Distribution signs upload state with it and its configuration docs
  (docs/content/about/configuration.md, `http.secret`) want it identical on every instance behind a
  load balancer; a random shared value replaces the public one.
- ROBOT_SCANNER_NAME_PREFIX (8 chars): utils/core.py prepare_core (`scan_robot_prefix`). Names of the
  scan robots core keeps in the shared database: shared so every node recognises them.
- harbor_admin_password: one value for every node's harbor.yml (the provider logs in with it).

Not shared, on purpose:
- registry_password (utils/configs.py, 32 chars, REGISTRY_CREDENTIAL_PASSWORD of core and jobservice) and
  the htpasswd file prepare makes from it (utils/registry.py gen_passwd_file): each node's core and
  jobservice only ever reach the registry of their own compose network (`registry_url` =
  http://registry:5000), and the file and the env values come out of the same prepare run, so they
  always agree on one node. Overriding the env value alone would break that agreement.
- defaultalias: utils/cert.py get_alias exists but prepare v2.15.2 never calls it (commands/prepare.py).
- RELOAD_KEY (core/env): empty, no config key sets it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random
import pulumi_tls as tls

from components.settings.settings import Settings
from components.vm.secret_values import SharedSecretValues

# prepare's lengths: get_secret_key refuses anything but 16 chars (utils/cert.py).
SECRET_KEY_LENGTH = 16
# utils/configs.py: core_secret, jobservice_secret = generate_random_string(16).
COMPONENT_SECRET_LENGTH = 16
# utils/core.py: csrf_key = generate_random_string(32), scan_robot_prefix = generate_random_string(8).
CSRF_KEY_LENGTH = 32
SCAN_ROBOT_PREFIX_LENGTH = 8
REGISTRY_HTTP_SECRET_LENGTH = 32
ADMIN_PASSWORD_LENGTH = 24
# The admin password's letters of each class (the generated single-VM, node-0 and shared one alike).
ADMIN_PASSWORD_MIN_EACH = 2
# utils/cert.py create_root_cert: `openssl genrsa 4096`, `req -x509 -days 3650 -subj /`.
TOKEN_KEY_BITS = 4096
TOKEN_CERT_VALIDITY_HOURS = 3650 * 24


SHARED_SECRETS_TYPE = "harbor-cache:index:HarborSharedSecrets"
INSTALL_TYPE = "harbor-cache:index:HarborInstall"


def admin_password_alias(
    name: str, suffix: str, other_suffix: str, other_type: str, opts: pulumi.ResourceOptions | None
) -> list[pulumi.Alias]:
    """The admin password's name under the other component of the pair `<cache>-install` (one VM,
    and node 0, which keeps the single VM's names) / `<cache>-shared` (HA), both children of the
    same parent: a switch between one VM and HA moves the one RandomPassword (same value) instead
    of replacing it. Nothing when `name` is not of that pair (HA nodes 1..N-1)."""
    if not name.endswith(suffix):
        return []
    other = name.removesuffix(suffix) + other_suffix
    parent = opts.parent if opts is not None else None
    return [pulumi.Alias(name=f"{other}-admin-password", parent=pulumi.create_urn(other, other_type, parent=parent))]


@dataclass(frozen=True)
class HarborSharedSecretsArgs:
    settings: Settings


class HarborSharedSecrets(pulumi.ComponentResource):
    values: pulumi.Output[SharedSecretValues]

    def __init__(self, name: str, args: HarborSharedSecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(SHARED_SECRETS_TYPE, name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # What cannot be drawn again without loss (issue 18 point 7): the secret key encrypts the
        # registry credentials and the OIDC secret in the database, and the token key signs every
        # bearer token the nodes accept. A replace or a delete of either (a refactoring that renames
        # it, a switch away from HA) stops at `protect` instead of silently drawing a new one.
        kept = pulumi.ResourceOptions(parent=self, protect=True)

        def alphanumeric(suffix: str, length: int, opts: pulumi.ResourceOptions = child) -> pulumi.Output[str]:
            # Letters and digits, as prepare's generate_random_string (utils/misc.py): the values pass
            # through env files, compose and YAML unharmed.
            return random.RandomPassword(f"{name}-{suffix}", length=length, special=False, opts=opts).result

        secret_key = alphanumeric("secret-key", SECRET_KEY_LENGTH, kept)
        core_secret = alphanumeric("core-secret", COMPONENT_SECRET_LENGTH)
        jobservice_secret = alphanumeric("jobservice-secret", COMPONENT_SECRET_LENGTH)
        csrf_key = alphanumeric("csrf-key", CSRF_KEY_LENGTH)
        registry_http_secret = alphanumeric("registry-http-secret", REGISTRY_HTTP_SECRET_LENGTH)
        scan_robot_prefix = alphanumeric("scan-robot-prefix", SCAN_ROBOT_PREFIX_LENGTH)
        if settings.admin_password is not None:
            admin_password = pulumi.Output.secret(settings.admin_password.value)
        else:
            # The single VM's generated password, moved here when a stack goes to several nodes: an
            # RDS database that outlives the switch (externalServices already on) keeps the admin
            # password it was initialised with, and the provider must still log in with it.
            previous = admin_password_alias(name, "-shared", "-install", INSTALL_TYPE, opts)
            admin_password = random.RandomPassword(
                f"{name}-admin-password",
                length=ADMIN_PASSWORD_LENGTH,
                special=False,
                min_upper=ADMIN_PASSWORD_MIN_EACH,
                min_lower=ADMIN_PASSWORD_MIN_EACH,
                min_numeric=ADMIN_PASSWORD_MIN_EACH,
                opts=pulumi.ResourceOptions(parent=self, aliases=previous),
            ).result

        self.token_key = tls.PrivateKey(f"{name}-token-key", algorithm="RSA", rsa_bits=TOKEN_KEY_BITS, opts=kept)
        self.token_certificate = tls.SelfSignedCert(
            f"{name}-token-cert",
            private_key_pem=self.token_key.private_key_pem,
            # prepare's `-subj /`: an empty subject; `req -x509` marks it a CA (openssl's v3_ca).
            is_ca_certificate=True,
            validity_period_hours=TOKEN_CERT_VALIDITY_HOURS,
            allowed_uses=["digital_signature", "cert_signing"],
            opts=child,
        )

        self.values = pulumi.Output.secret(
            pulumi.Output.all(
                secret_key,
                self.token_key.private_key_pem,
                self.token_certificate.cert_pem,
                core_secret,
                jobservice_secret,
                csrf_key,
                registry_http_secret,
                scan_robot_prefix,
                admin_password,
            ).apply(lambda values: SharedSecretValues(*values))
        )
        # Only the certificate is public; the values object stays out of outputs (it is secret anyway).
        self.register_outputs({"token_certificate_pem": self.token_certificate.cert_pem})
