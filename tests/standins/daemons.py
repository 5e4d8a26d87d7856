"""Real daemons on loopback for integration tests: a TLS registry (Debian's docker-registry) and
containerd, each with its own temp directories, started and stopped by the test."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import tomli_w
import yaml

from tests.conftest import unavailable


def require_binaries(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        unavailable(f"needs {', '.join(missing)} (Debian packages; scripts/test.sh installs them as root)")


def stop_process(process: subprocess.Popen, log) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as error:  # noqa: BLE001 - keep polling, report the last one
            last_error = error
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last_error})")


@dataclass
class TestCa:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_test_ca(directory: Path, names: tuple[str, ...] = (), loopback: bool = True) -> TestCa:
    """A CA made in the test, and a server certificate for 127.0.0.1, localhost and `names` signed by it
    (for `names` only without `loopback`: a certificate for another name)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)  # noqa: E731
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
        "-days",
        "2",
        "-subj",
        "/CN=harbor-cache test CA",
    )
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    extensions = directory / "san.cnf"
    alt_names = ",".join([*(["IP:127.0.0.1", "DNS:localhost"] if loopback else []), *(f"DNS:{name}" for name in names)])
    extensions.write_text(f"subjectAltName={alt_names}\nextendedKeyUsage=serverAuth\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(extensions),
    )
    return TestCa(ca_cert=ca_cert, server_cert=cert, server_key=key)


class Registry:
    """Debian's docker-registry (distribution) over TLS on 127.0.0.1, logging every request."""

    def __init__(self, directory: Path, ca: TestCa, tls: bool = True) -> None:
        self.directory = directory
        self.scheme = "https" if tls else "http"
        self.ca = ca
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = directory / "registry.log"
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}},
            "http": {"addr": self.host},
        }
        if tls:
            config["http"]["tls"] = {"certificate": str(ca.server_cert), "key": str(ca.server_key)}
        config_path = directory / "config.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(["docker-registry", "serve", str(config_path)], stdout=self.log, stderr=self.log)
        context = ssl.create_default_context(cafile=str(ca.ca_cert))
        url = f"{self.scheme}://{self.host}/v2/"
        wait_until(lambda: urllib.request.urlopen(url, context=context, timeout=2).status == 200, 20, "docker-registry")

    def requests(self) -> list[str]:
        """Request lines of the access log, e.g. 'GET /v2/dockerhub-proxy/library/x/manifests/1'."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if '"' in line and "HTTP/" in line:
                request = line.split('"')[1]
                lines.append(request.rsplit(" ", 1)[0])
        return lines

    def stop(self) -> None:
        stop_process(self.process, self.log)


def _blob(directory: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (directory / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (directory / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def build_oci_image(directory: Path, tag: str, message: str) -> Path:
    """A one-file image in an OCI layout, built here: no download, no Docker."""
    content = message.encode()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        archive.addfile(info, io.BytesIO(content))
    layer_tar = tar_bytes.getvalue()
    layer = _blob(directory, gzip.compress(layer_tar, mtime=0))
    config = _blob(
        directory,
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"]},
            }
        ).encode(),
    )
    manifest = _blob(
        directory,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
            }
        ).encode(),
    )
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (directory / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        **manifest,
                        "annotations": {"org.opencontainers.image.ref.name": tag},
                    }
                ],
            }
        )
    )
    return directory


def push_image(layout: Path, tag: str, registry: Registry, repository: str) -> None:
    cert_dir = registry.directory / "skopeo-certs"
    cert_dir.mkdir(exist_ok=True)
    shutil.copy(registry.ca.ca_cert, cert_dir / "ca.crt")
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--dest-cert-dir",
            str(cert_dir),
            *([] if registry.scheme == "https" else ["--dest-tls-verify=false"]),
            f"oci:{layout}:{tag}",
            f"docker://{registry.host}/{repository}:{tag}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


class Containerd:
    """containerd with its own root, state and socket under a temp dir (CRI disabled: ctr is enough)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.socket = directory / "containerd.sock"
        config = directory / "config.toml"
        config.write_text(
            tomli_w.dumps(
                {
                    "version": 2,
                    "root": str(directory / "root"),
                    "state": str(directory / "state"),
                    "disabled_plugins": ["io.containerd.grpc.v1.cri"],
                    "grpc": {"address": str(self.socket)},
                    "ttrpc": {"address": str(directory / "ttrpc.sock")},
                }
            )
        )
        self.log_path = directory / "containerd.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(["containerd", "--config", str(config)], stdout=self.log, stderr=self.log)
        wait_until(lambda: self.ctr("version").returncode == 0, 20, "containerd")

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ctr", "--address", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "HTTPS_PROXY": "", "HTTP_PROXY": ""},
        )

    def pull(self, reference: str, hosts_dir: Path) -> subprocess.CompletedProcess:
        return self.ctr(
            "images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", "native", "--platform", "linux/amd64", reference
        )

    def stop(self) -> None:
        stop_process(self.process, self.log)
