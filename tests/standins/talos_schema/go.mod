// Pins the Talos machinery module whose config JSON schema (config/schemas/config.schema.json, generated
// by Talos's docgen from the Go types) the node-config tests validate the Talos outputs against.
// v1.12.0 is the first release with RegistryMirrorConfig documents. Only downloaded, never built:
// tests/standins/talos_schema.py runs `go mod download`, which checks the zip against go.sum.
module harbor-cache/tests/talos-schema

go 1.22

require github.com/siderolabs/talos/pkg/machinery v1.12.0
