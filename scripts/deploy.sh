#!/usr/bin/env bash
# Deploys one environment with Pulumi's local file backend: no Pulumi Cloud account is needed.
# Usage: scripts/deploy.sh [--check | --preview] <stack> [extra `pulumi up`/`preview` flags]
#   --check    only the preflight: tools, stack file, secrets provider, AWS identity, hosted zone,
#              KMS key, example values, this machine's address in the CIDRs (nothing is created)
#   --preview  preflight, then `pulumi preview` with the policy pack (nothing is changed)
#   (none)     preflight, then `pulumi up` with the policy pack
# State lives under PULUMI_BACKEND_URL (default file://~/.pulumi-harbor-cache). Secrets in it are
# encrypted with the stack's own secrets provider: the one its Pulumi.<stack>.yaml names
# (`secretsprovider:`), or for a new stack PULUMI_SECRETS_PROVIDER (recommended: one KMS key per
# stack, awskms://alias/harbor-cache-<stack>?region=<region>), or else a passphrase from
# PULUMI_CONFIG_PASSPHRASE_FILE / PULUMI_CONFIG_PASSPHRASE.
# The program and the policy pack run from venvs installed from the hashed locks, and every `up`
# runs the policy pack, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/deploy.sh [--check | --preview] <stack> [pulumi flags]"
mode=up
case ${1:-} in
  --check) mode=check; shift ;;
  --preview) mode=preview; shift ;;
  -h|--help) echo "$usage"; exit 0 ;;
esac
stack=${1:?$usage}
shift
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$HOME/.pulumi-harbor-cache}

# Preflight, part 1: what needs nothing installed, before the installs (which take a while).
problems=0
problem() { echo "FAIL $1" >&2; problems=$((problems + 1)); }
version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# The CLI runs the locked SDK's engine protocol: at least the SDK's version, as the workflows install.
sdk_version=$(sed -n 's/^pulumi==\([0-9.]*\).*/\1/p' requirements.lock)
if ! command -v pulumi >/dev/null; then
  problem "Pulumi CLI: not installed. Install ${sdk_version} or newer (https://www.pulumi.com/docs/install/) and put it on PATH"
else
  # `pulumi version` prints the version with a leading v (pkg/cmd/pulumi/version.go: version.Version).
  cli_version=$(pulumi version 2>/dev/null | head -n1 | tr -d '[:space:]')
  cli_version=${cli_version#v}
  if [ -z "$cli_version" ] || ! version_at_least "$cli_version" "$sdk_version"; then
    problem "Pulumi CLI: version '${cli_version}' is older than the locked SDK (${sdk_version}): update it (https://www.pulumi.com/docs/install/)"
  else
    echo "ok   Pulumi CLI: ${cli_version}"
  fi
fi

if ! command -v python3 >/dev/null; then
  problem "Python: python3 is not on PATH: install Python 3.11 or newer"
elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  problem "Python: $(python3 --version 2>&1) is older than 3.11: install Python 3.11 or newer as python3"
else
  echo "ok   Python: $(python3 --version 2>&1)"
fi

# Without this, `pulumi stack select --create` would make an empty stack that deploys nothing useful.
if [ ! -f "Pulumi.${stack}.yaml" ]; then
  problem "stack file: there is no Pulumi.${stack}.yaml. Copy Pulumi.dev.yaml to Pulumi.${stack}.yaml and set the keys the README's quick start lists (docs/configuration.md has them all)"
fi

create_flags=()
if grep -q '^secretsprovider:' "Pulumi.${stack}.yaml" 2>/dev/null; then
  : # the stack file names its key (and carries its encrypted data key)
elif [ -n "${PULUMI_SECRETS_PROVIDER:-}" ]; then
  create_flags=(--secrets-provider "$PULUMI_SECRETS_PROVIDER")
elif [ -n "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  if [ -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ] && [ -r "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
    create_flags=(--secrets-provider passphrase)
  else
    problem "secrets provider: PULUMI_CONFIG_PASSPHRASE_FILE=${PULUMI_CONFIG_PASSPHRASE_FILE} is missing or empty: write a passphrase into it (umask 077 && openssl rand -base64 32 > <file>)"
  fi
elif [ -n "${PULUMI_CONFIG_PASSPHRASE:-}" ]; then
  create_flags=(--secrets-provider passphrase)
else
  problem "secrets provider: Pulumi.${stack}.yaml names none. Set PULUMI_SECRETS_PROVIDER (e.g. awskms://alias/harbor-cache-${stack}?region=<region>, one key per stack) or PULUMI_CONFIG_PASSPHRASE_FILE: it encrypts the stack's secrets in the state"
fi

if [ "$problems" -gt 0 ]; then
  echo "preflight: ${problems} problem(s); nothing was installed or created" >&2
  exit 2
fi

pip_flags=(install -q --disable-pip-version-check --require-hashes)
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/pip "${pip_flags[@]}" -r requirements.lock

# Preflight, part 2: the stack file through the program's validation, example values, AWS, this
# machine's address (components/preflight.py). Nothing is created before it passes.
if ! venv/bin/python -m components.preflight "$stack"; then
  exit 2
fi
if [ "$mode" = check ]; then
  echo "preflight passed: scripts/deploy.sh --preview ${stack} shows the plan, scripts/deploy.sh ${stack} deploys"
  exit 0
fi

[ -x policy/venv/bin/python ] || python3 -m venv policy/venv
policy/venv/bin/pip "${pip_flags[@]}" -r policy/requirements.lock

case $PULUMI_BACKEND_URL in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
pulumi stack select --create "$stack" "${create_flags[@]}"
pulumi "$mode" --stack "$stack" --policy-pack policy "$@"
