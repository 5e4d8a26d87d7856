"""Drives the dynamic providers exactly as the Pulumi engine does: through the real provider host
(`python -u -m pulumi.dynamic`, started in the project root) over gRPC, with `__provider` from
`serialize_provider` and properties serialised by Pulumi's own rpc module."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import grpc
from google.protobuf import struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.paths import ROOT

PROVIDER_KEY = "__provider"


def _serialize(props: dict[str, Any]) -> struct_pb2.Struct:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def _deserialize(struct: struct_pb2.Struct) -> dict[str, Any]:
    return rpc.deserialize_properties(struct, keep_unknowns=True)


class ProviderHost:
    """One fresh host process (it caches the provider and its config)."""

    def __init__(self, provider: Any, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        """`args`: what the engine passes the plugin (its own gRPC address, pkg/resource/plugin/provider_plugin.go)."""
        self.serialized = serialize_provider(provider)
        # The provider the *state* names: the engine sends it with the old properties (Read, Delete,
        # and the olds of Diff and Update), while news carry the program's. The host unpickles the
        # olds' provider for Read and Delete (pulumi/dynamic/__main__.py). A test of a state written
        # by older code sets it.
        self.state_provider: str | None = None
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic", *(args or [])],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PULUMI_PROJECT": "harbor-cache", **(env or {})},
        )
        port = self.process.stdout.readline().decode().strip()
        if not port.isdigit():
            raise RuntimeError(f"provider host did not start: {port!r} {self.process.stderr.read().decode()[-2000:]}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.process.kill()
        self.process.wait(10)

    def __enter__(self) -> ProviderHost:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def urn(self, name: str, kind: str) -> str:
        return f"urn:pulumi:test::harbor-cache::pulumi-python:dynamic/harbor:{kind}::{name}"

    def props(self, values: dict[str, Any]) -> struct_pb2.Struct:
        return _serialize({**values, PROVIDER_KEY: self.serialized})

    def state_props(self, values: dict[str, Any]) -> struct_pb2.Struct:
        return _serialize({**values, PROVIDER_KEY: self.state_provider or self.serialized})

    def configure(self, config: dict[str, str] | None = None) -> None:
        self.stub.Configure(provider_pb2.ConfigureRequest(args=_serialize(config or {}), acceptSecrets=False))

    def check(self, urn: str, news: dict[str, Any], olds: dict[str, Any] | None = None) -> tuple[dict, list[tuple[str, str]]]:
        answer = self.stub.Check(provider_pb2.CheckRequest(urn=urn, olds=self.props(olds or {}), news=self.props(news)))
        inputs = _deserialize(answer.inputs)
        inputs.pop(PROVIDER_KEY, None)
        return inputs, [(f.property, f.reason) for f in answer.failures]

    def create(self, urn: str, inputs: dict[str, Any]) -> tuple[str, dict]:
        answer = self.stub.Create(provider_pb2.CreateRequest(urn=urn, properties=self.props(inputs)))
        outputs = _deserialize(answer.properties)
        outputs.pop(PROVIDER_KEY, None)
        return answer.id, outputs

    def read(self, urn: str, id_: str, props: dict[str, Any], inputs: dict[str, Any] | None = None) -> tuple[str, dict]:
        request = provider_pb2.ReadRequest(
            urn=urn,
            id=id_,
            properties=self.state_props(props) if props else struct_pb2.Struct(),
            inputs=self.state_props(inputs) if inputs else None,
        )
        answer = self.stub.Read(request)
        outputs = _deserialize(answer.properties)
        outputs.pop(PROVIDER_KEY, None)
        return answer.id, outputs

    def import_read(self, urn: str, id_: str) -> tuple[str, dict]:
        """What `pulumi import` (or the `import` option) sends: Read with the id only, no inputs and
        no state (pkg/resource/deploy/step.go ImportStep.Apply -> prov.Read{URN, ID})."""
        answer = self.stub.Read(provider_pb2.ReadRequest(urn=urn, id=id_))
        return answer.id, _deserialize(answer.properties)

    def diff(self, urn: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> provider_pb2.DiffResponse:
        return self.stub.Diff(provider_pb2.DiffRequest(urn=urn, id=id_, olds=self.state_props(olds), news=self.props(news)))

    def update(self, urn: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict:
        answer = self.stub.Update(provider_pb2.UpdateRequest(urn=urn, id=id_, olds=self.state_props(olds), news=self.props(news)))
        outputs = _deserialize(answer.properties)
        outputs.pop(PROVIDER_KEY, None)
        return outputs

    def delete(self, urn: str, id_: str, props: dict[str, Any]) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(urn=urn, id=id_, properties=self.state_props(props)))


def previewed_outputs(inputs: dict[str, Any], output_keys: tuple[str, ...]) -> dict[str, Any]:
    """The outputs the engine shows for a dynamic resource in a preview of an update: dynamic
    providers do not preview, so the new inputs stand for the outputs and every output-only key
    is unknown (DESIGN.md "Pulumi")."""
    return {**inputs, **{key: rpc.UNKNOWN for key in output_keys}}


def as_engine_sends(values: dict[str, Any]) -> dict[str, Any]:
    """The engine hands numbers over as floats."""
    return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in values.items()}
