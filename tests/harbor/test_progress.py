"""Long waits say what they wait for in `pulumi up` (issue 19). The provider host runs as the engine
starts it, with the engine's address as its argument (pkg/resource/plugin/provider_plugin.go), and
a stand-in engine records the Log RPCs (engine.proto LogRequest) the provider sends while Harbor
pings an upstream inside a registry POST."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc

from components.aws import host_key_provider
from components.harbor import progress
from components.harbor.registry import HarborRegistryProvider
from tests.harbor.test_provider_host import ADMIN_PASSWORD, FAST_RETRIES, create_registry
from tests.standins.harbor_emulator import HarborEmulator
from tests.standins.provider_host import ProviderHost


class Engine(engine_pb2_grpc.EngineServicer):
    """What the CLI's engine does with a LogRequest: shows it (here: keeps it)."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, str]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Log(self, request, context):  # noqa: N802 - gRPC's name
        self.messages.append((request.severity, request.message))
        from google.protobuf import empty_pb2

        return empty_pb2.Empty()


@pytest.fixture
def engine():
    started = Engine()
    yield started
    started.server.stop(0)


def test_a_registry_write_that_waits_for_harbors_upstream_ping_says_so_in_pulumi_up(engine):
    harbor = HarborEmulator(admin_password=ADMIN_PASSWORD)
    harbor.ping_delay = 2.5
    env = {
        **FAST_RETRIES,
        "HARBOR_CACHE_HTTP_TIMEOUT": "10",
        "HARBOR_CACHE_PROGRESS_AFTER": "0.5",
        "HARBOR_CACHE_PROGRESS_EVERY": "0.7",
    }
    try:
        with ProviderHost(HarborRegistryProvider(), env=env, args=[f"127.0.0.1:{engine.port}"]) as host:
            host.configure({"harbor-cache:hostname": "harbor.dev.example.com"})
            create_registry(host, harbor)
    finally:
        harbor.stop()
    waits = [message for severity, message in engine.messages if "POST /api/v2.0/registries" in message]
    assert len(waits) >= 2, engine.messages
    assert all(severity == engine_pb2.INFO for severity, _ in engine.messages)
    assert waits[0].startswith("Harbor POST /api/v2.0/registries (") and "): waiting 1 s of at most " in waits[0], waits
    assert "s3cret-token" not in " ".join(waits), "what is waited for, never a secret"


def test_without_an_engine_the_wait_goes_to_stderr(capsys):
    with progress.waiting("something slow", limit=3, after=0.1, every=0.2):
        import time

        time.sleep(0.45)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("something slow")]
    assert lines and lines[0] == "something slow: waiting 0 s of at most 3 s"


def test_the_host_key_wait_says_what_it_waits_for(monkeypatch, capsys):
    answers = iter([{"Output": ""}, {"Output": ""}, {"Output": ""}])

    class Console:
        def get_console_output(self, **_):
            return next(answers, {"Output": ""})

    monkeypatch.setattr(progress, "EVERY", 0.05)
    with pytest.raises(host_key_provider.HostKeyError):
        host_key_provider.wait_for_host_key(
            "i-0abc", "eu-central-1", timeout=0.3, interval=0.06, client_factory=lambda _: Console()
        )
    said = capsys.readouterr().err
    assert (
        "waiting for instance i-0abc's SSH host key on its console" in said and "of at most 0.3 s (no console output yet)" in said
    )
