// The libraries Harbor v2.15.2's registry is built from (goharbor/distribution v2.8.3-harbor.1 and
// its vendor/; see main.go for why docker/distribution v2.8.3 stands for the fork here). Built by
// tests/standins/registry_harness.py with -mod=readonly: these pins are what runs.
module harbor-cache/tests/registry_go

go 1.22

require (
	github.com/docker/distribution v2.8.3+incompatible
	github.com/gomodule/redigo v1.8.8
)

require (
	github.com/aws/aws-sdk-go v1.15.11 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/docker/go-metrics v0.0.1 // indirect
	github.com/go-ini/ini v1.25.4 // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	github.com/jmespath/go-jmespath v0.0.0-20160202185014-0b12d6b521d8 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_golang v1.19.1 // indirect
	github.com/prometheus/client_model v0.6.1 // indirect
	github.com/prometheus/common v0.55.0 // indirect
	github.com/prometheus/procfs v0.15.1 // indirect
	github.com/sirupsen/logrus v1.9.3 // indirect
	github.com/smartystreets/goconvey v1.8.1 // indirect
	golang.org/x/sys v0.21.0 // indirect
	google.golang.org/protobuf v1.34.2 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
)

// The fork's vendor.conf pins yaml.v2 v2.2.1; newer requirements of unrelated modules must not lift it.
replace gopkg.in/yaml.v2 => gopkg.in/yaml.v2 v2.2.1
