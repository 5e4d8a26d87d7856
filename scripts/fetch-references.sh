#!/usr/bin/env bash
# Fetches the reference files the tests check against (Harbor v2.15.2's API spec and harbor.yml
# template, the compose-spec schema) into a folder, for CI outside this workplace, where
# ../shared/reference is not laid beside the checkout. Usage: scripts/fetch-references.sh DIR
set -euo pipefail
target=${1:?usage: scripts/fetch-references.sh DIR}
mkdir -p "$target"
fetch() { curl --fail --silent --show-error --location --retry 3 --output "$target/$1" "$2"; }
fetch harbor-v2.15.2-swagger.yaml https://raw.githubusercontent.com/goharbor/harbor/v2.15.2/api/v2.0/swagger.yaml
fetch harbor-v2.15.2-harbor.yml.tmpl https://raw.githubusercontent.com/goharbor/harbor/v2.15.2/make/harbor.yml.tmpl
fetch compose-spec.json https://raw.githubusercontent.com/compose-spec/compose-spec/main/schema/compose-spec.json
ls -l "$target"
