#!/usr/bin/env bash
# Fetches the reference files the tests check against (Harbor v2.15.2's API spec and harbor.yml
# template, the compose-spec schema) into a folder, for CI outside this workplace, where
# ../shared/reference is not laid beside the checkout. Usage: scripts/fetch-references.sh DIR
# Each file comes from a commit (v2.15.2 is goharbor/harbor 080b0220574c; the compose-spec commit
# is the one the shared copy was taken from) and must match its sha256, so a moved tag or branch
# cannot change what the tests trust.
set -euo pipefail
target=${1:?usage: scripts/fetch-references.sh DIR}
mkdir -p "$target"
harbor=https://raw.githubusercontent.com/goharbor/harbor/080b0220574cc853ae1e2946ce7a5610ba855757
compose_spec=https://raw.githubusercontent.com/compose-spec/compose-spec/170098ba07d9f53c383a41bfd4c5166b0a4529a6
# sigstore-python v4.5.0's test asset: a real GitHub Actions keyless bundle of the rfc8785 0.1.2 wheel
# (tests/vm/test_installer_signature.py; shared/reference/sigstore/README.md names what it signs).
sigstore_python=https://raw.githubusercontent.com/sigstore/sigstore-python/181074f4dc11b7e85ef44556e25248ef14fcb554
fetch() {
  local name=$1 url=$2 sha256=$3
  curl --fail --silent --show-error --location --retry 3 --output "$target/$name.part" "$url"
  echo "$sha256  $target/$name.part" | sha256sum --check --quiet || {
    echo "$url does not have sha256 $sha256" >&2
    rm -f "$target/$name.part"
    exit 1
  }
  mv "$target/$name.part" "$target/$name"
}
fetch harbor-v2.15.2-swagger.yaml "$harbor/api/v2.0/swagger.yaml" 9be2b505d4c6baba40e6d646eac2b0aa4ff11f938727ae1eaa491ca01ebf71c7
fetch harbor-v2.15.2-harbor.yml.tmpl "$harbor/make/harbor.yml.tmpl" f991ec9622393a15d1cbdf38df6f7e55da45d990c91d144859be98454bc4cb4e
fetch compose-spec.json "$compose_spec/schema/compose-spec.json" 1f91e091f16b2dd50ab8860e02bb391d22df553d91c145eacedb1b6eff9c3f0e
mkdir -p "$target/sigstore"
fetch sigstore/rfc8785-0.1.2-py3-none-any.whl.sigstore.json "$sigstore_python/test/assets/bundle_v3_github.whl.sigstore" \
  b49e7c6b452af421e5965321fc31e004d7554af3acd89f661f8c2f0f94c37e9d
ls -l "$target"
