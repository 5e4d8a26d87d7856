#!/usr/bin/env bash
# Prints the URI of the ACME account Traefik registered, for the CAA record's accounturi, and
# nothing else (the account's private key stays in the file).
# Traefik's store (traefik v3.6.24 pkg/provider/acme/local_store.go, store.go, account.go) is JSON:
#   {"<resolver>": {"Account": {"Email": ..., "Registration": {"body": {...}, "uri": "<account URL>"},
#                               "PrivateKey": ...}, "Certificates": [...]}}
# Usage: acme-account-uri.sh <acme.json> <resolver> <account URL prefix of the CA>
set -euo pipefail

store=${1:?usage: acme-account-uri.sh <acme.json> <resolver> <account URL prefix>}
resolver=${2:?usage: acme-account-uri.sh <acme.json> <resolver> <account URL prefix>}
prefix=${3:?usage: acme-account-uri.sh <acme.json> <resolver> <account URL prefix>}

python3 - "$store" "$resolver" "$prefix" <<'PYTHON'
import json
import sys

store, resolver, prefix = sys.argv[1:4]
try:
    with open(store, encoding="utf-8") as handle:
        data = json.load(handle)
except (OSError, ValueError) as error:
    sys.exit(f"cannot read Traefik's ACME store {store}: {error}")
account = (data.get(resolver) or {}).get("Account") or {}
uri = (account.get("Registration") or {}).get("uri") or ""
if not uri:
    sys.exit(f"{store} holds no registered ACME account for resolver {resolver!r}")
# The account id is a number at the end of the CA's account URL; anything else is not ours.
if not (uri.startswith(prefix) and uri[len(prefix):].isdigit()):
    sys.exit(f"the ACME account in {store} is {uri!r}, not an account at {prefix}<id>")
print(uri)
PYTHON
