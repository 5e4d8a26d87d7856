// Command registry_go runs the code Harbor v2.15.2's `registry` runs, against a config.yml that
// Harbor's prepare made from our harbor.yml, with the environment the compose files give the
// registry container. Harbor builds that binary from goharbor/distribution v2.8.3-harbor.1
// (Harbor Makefile REGISTRY_SRC_TAG, make/photon/registry/Dockerfile.binary) with its vendor/
// tree. The module proxy does not serve that fork, so go.mod pins what is the same in it:
//
//   - github.com/docker/distribution v2.8.3: the fork's registry/storage/driver/s3-aws/s3.go,
//     registry/storage/driver/factory/factory.go and configuration/parser.go are byte for byte
//     those of the v2.8.3 tag (the fork's release/2.8 branch adds redis sentinel and TLS only);
//   - github.com/aws/aws-sdk-go v1.15.11 (the fork's vendor/github.com/aws/aws-sdk-go/aws/version.go);
//   - gopkg.in/yaml.v2 v2.2.1 (vendor.conf);
//   - github.com/gomodule/redigo v1.8.8: every file of the fork's vendor/github.com/gomodule/redigo/redis
//     is identical to that release (vendor.conf pins commit a83ebbee).
//
// registryctl.mod pins what Harbor v2.15.2 builds registryctl with (src/go.mod: github.com/docker/distribution
// replaced by github.com/distribution/distribution v2.8.2+incompatible, aws-sdk-go v1.55.8, redigo
// v1.9.2); registryctl builds the same driver from the same config.yml
// (src/registryctl/config/config.go setStorageDriver: configuration.Parse, factory.Create) and
// deletes blobs with it for garbage collection. The test builds both: `go build -modfile=registryctl.mod`.
//
// What only the fork has is its redis section (configuration/configuration.go: EnableTLS with
// `yaml:"enabletls"`) and the code that dials redis with it (registry/handlers/app.go
// configureRedis); forkRedisConfiguration and dialRedis below restate those, field for field.
//
// Usage:
//
//	registry_go s3 <config.yml> [-build-only]   build the s3-aws driver, write and read one blob
//	registry_go s3 <config.yml> -url <path>     build it and presign a GET of <path> (no network)
//	registry_go redis <config.yml>              dial redis as the registry does, AUTH, SELECT, PING
//
// Each prints one JSON object on stdout; the exit status is 0 only when everything worked.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/docker/distribution/configuration"
	"github.com/docker/distribution/registry/storage/driver/factory"
	_ "github.com/docker/distribution/registry/storage/driver/s3-aws"
	"github.com/gomodule/redigo/redis"
)

type result map[string]interface{}

func finish(r result, ok bool) {
	r["ok"] = ok
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if !ok {
		os.Exit(1)
	}
	os.Exit(0)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: registry_go s3|redis <config.yml> [-build-only]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "s3":
		mode, urlPath := "", ""
		if len(os.Args) > 3 {
			mode = os.Args[3]
		}
		if len(os.Args) > 4 {
			urlPath = os.Args[4]
		}
		runS3(os.Args[2], mode, urlPath)
	case "redis":
		runRedis(os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

// runS3 does what the registry does at start (registry/handlers/app.go NewApp:
// factory.Create(config.Storage.Type(), config.Storage.Parameters())) and then what a blob push
// and pull do to the driver (PutContent, GetContent). Mode "-build-only" stops after the build;
// mode "-url" asks the driver for the URL the registry redirects a GET of urlPath to when storage
// redirects are on (registry/storage/blobserver.go ServeBlob:
// bs.driver.URLFor(ctx, path, map[string]interface{}{"method": r.Method})); presigning signs
// locally with the credentials of the driver's chain, nothing is contacted.
func runS3(path, mode, urlPath string) {
	r := result{"stage": "parse"}
	file, err := os.Open(path)
	if err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	// configuration.Parse applies the REGISTRY_* environment overrides (configuration/parser.go).
	config, err := configuration.Parse(file)
	if err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	params := config.Storage.Parameters()
	r["driver"] = config.Storage.Type()
	r["region"] = fmt.Sprint(params["region"])
	r["regionendpoint"] = fmt.Sprint(params["regionendpoint"])

	r["stage"] = "build"
	driver, err := factory.Create(config.Storage.Type(), params)
	if err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	if mode == "-build-only" {
		finish(r, true)
	}
	if mode == "-url" {
		r["stage"] = "url"
		url, err := driver.URLFor(context.Background(), urlPath, map[string]interface{}{"method": "GET"})
		if err != nil {
			r["error"] = err.Error()
			finish(r, false)
		}
		r["url"] = url
		finish(r, true)
	}

	r["stage"] = "write"
	ctx := context.Background()
	suffix := make([]byte, 8)
	_, _ = rand.Read(suffix)
	key := "/harbor-cache-harness/" + hex.EncodeToString(suffix)
	blob := []byte("harbor-cache registry harness blob " + hex.EncodeToString(suffix))
	if err := driver.PutContent(ctx, key, blob); err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	r["stage"] = "read"
	back, err := driver.GetContent(ctx, key)
	if err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	r["key"] = key
	r["bytes"] = len(back)
	finish(r, bytes.Equal(back, blob))
}

// forkRedisConfiguration is the part of goharbor/distribution v2.8.3-harbor.1's
// configuration.Configuration the registry's redis pool reads: the Redis struct of
// configuration/configuration.go with the fork's field names and yaml tags (the env override
// matches field names, yaml.v2 matches the tags exactly).
type forkRedisConfiguration struct {
	Version configuration.Version `yaml:"version"`
	Redis   struct {
		Addr              string        `yaml:"addr,omitempty"`
		SentinelMasterSet string        `yaml:"sentinelMasterSet,omitempty"`
		Password          string        `yaml:"password,omitempty"`
		DB                int           `yaml:"db,omitempty"`
		EnableTLS         bool          `yaml:"enabletls,omitempty"`
		DialTimeout       time.Duration `yaml:"dialtimeout,omitempty"`
		ReadTimeout       time.Duration `yaml:"readtimeout,omitempty"`
		WriteTimeout      time.Duration `yaml:"writetimeout,omitempty"`
		Pool              struct {
			MaxIdle     int           `yaml:"maxidle,omitempty"`
			MaxActive   int           `yaml:"maxactive,omitempty"`
			IdleTimeout time.Duration `yaml:"idletimeout,omitempty"`
		} `yaml:"pool,omitempty"`
	} `yaml:"redis,omitempty"`
}

// runRedis parses the redis section with distribution's own parser (version 0.1, prefix
// "registry", as configuration.Parse does) and dials as the fork's configureRedis does.
func runRedis(path string) {
	r := result{"stage": "parse"}
	in, err := os.ReadFile(path)
	if err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	parser := configuration.NewParser("registry", []configuration.VersionedParseInfo{{
		Version: configuration.MajorMinorVersion(0, 1),
		ParseAs: reflect.TypeOf(forkRedisConfiguration{}),
		ConversionFunc: func(c interface{}) (interface{}, error) {
			return c, nil
		},
	}})
	config := new(forkRedisConfiguration)
	if err := parser.Parse(in, config); err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	r["addr"] = config.Redis.Addr
	r["enabletls"] = config.Redis.EnableTLS
	r["db"] = config.Redis.DB

	r["stage"] = "dial"
	conn, err := dialRedis(config)
	if err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	defer conn.Close()
	r["stage"] = "ping"
	// The pool's TestOnBorrow without a sentinel: PING.
	pong, err := redis.String(conn.Do("PING"))
	if err != nil {
		r["error"] = err.Error()
		finish(r, false)
	}
	r["reply"] = pong
	finish(r, pong == "PONG")
}

// dialRedis is the pool's Dial of the fork's registry/handlers/app.go configureRedis (no
// sentinel): the options from the config, redis.Dial, AUTH with the password, SELECT the db.
func dialRedis(config *forkRedisConfiguration) (redis.Conn, error) {
	var options []redis.DialOption
	if config.Redis.DialTimeout > 0 {
		options = append(options, redis.DialConnectTimeout(config.Redis.DialTimeout))
	}
	if config.Redis.ReadTimeout > 0 {
		options = append(options, redis.DialReadTimeout(config.Redis.ReadTimeout))
	}
	if config.Redis.WriteTimeout > 0 {
		options = append(options, redis.DialWriteTimeout(config.Redis.WriteTimeout))
	}
	if config.Redis.EnableTLS {
		options = append(options, redis.DialUseTLS(true))
	}
	conn, err := redis.Dial("tcp", config.Redis.Addr, options...)
	if err != nil {
		return nil, err
	}
	if config.Redis.Password != "" {
		if _, err := conn.Do("AUTH", config.Redis.Password); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if config.Redis.DB != 0 {
		if _, err := conn.Do("SELECT", config.Redis.DB); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}
