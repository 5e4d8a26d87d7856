"""The plain secret values the renderers put into files (never in repr)."""

from __future__ import annotations

from dataclasses import dataclass

# Each node's own Harbor database password (components/vm/install.py), letters and digits; the policy pack floors
# it (policy/resource_checks.py RANDOM_PASSWORDS).
DATABASE_PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class HarborSecrets:
    """Plain values of the secrets that go into harbor.yml (kept out of repr)."""

    admin_password: str
    database_password: str
    # externalServices only: RDS's master password and ElastiCache's AUTH token.
    external_database_password: str = ""
    redis_password: str = ""

    def __repr__(self) -> str:
        return "HarborSecrets(***)"


@dataclass(frozen=True)
class SharedSecretValues:
    """What every Harbor node must hold identically in HA mode (replicas > 1), generated once by
    components/vm/shared_secrets.py. Harbor's prepare (v2.15.2) would otherwise make each of
    these per node, and per run for the env values. Plain values: kept out of repr.
    """

    # /data/secret/keys/secretkey: encrypts registry credentials stored in the shared database.
    secret_key: str
    # /data/secret/core/private_key.pem and /data/secret/registry/root.crt: core signs the bearer
    # tokens of /service/token with the key and core verifies them on /v2/ requests (the 2.15.2
    # registry itself authenticates with htpasswd only: prepare's registry config.yml `auth: htpasswd`),
    # so a token issued by one node's core must verify on any node's core. The certificate goes with
    # the key: prepare keeps a pair only when both files exist.
    token_private_key_pem: str
    token_certificate_pem: str
    # CORE_SECRET / JOBSERVICE_SECRET: core, jobservice and registryctl authenticate each other.
    core_secret: str
    jobservice_secret: str
    # CSRF_KEY: the portal's CSRF token must verify on whichever node the load balancer picks.
    csrf_key: str
    # REGISTRY_HTTP_SECRET: signs the registry's upload state (distribution http.secret).
    registry_http_secret: str
    # ROBOT_SCANNER_NAME_PREFIX: names of the scan robots core keeps in the shared database.
    scan_robot_prefix: str
    # harbor.yml's harbor_admin_password: the same on every node (only the first core that meets
    # the empty database applies it, and the provider logs in with it).
    admin_password: str

    def __repr__(self) -> str:
        return "SharedSecretValues(***)"
