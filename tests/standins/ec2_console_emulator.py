"""A loopback stand-in of EC2's GetConsoleOutput, speaking the EC2 Query API as boto3 calls it.

Request: POST / (form body `Action=GetConsoleOutput&Version=2016-11-15&InstanceId=...&Latest=true`)
signed with SigV4. Answer, as the API reference shows it
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html):
`<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` with `requestId`,
`instanceId`, `timestamp` and `output` (base64; absent while the instance has written nothing).
Errors are HTTP 400 `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html#api-error-response).
"""

from __future__ import annotations

import base64
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"


@dataclass(frozen=True)
class Console:
    """What the console holds at one poll; None: nothing written yet (no `output` element)."""

    text: str | None


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    status: int = 400


class Ec2ConsoleEmulator:
    """Answers the n-th GetConsoleOutput with answers[n] (the last one repeats).

    `latest_supported=False` acts as a non-Nitro instance type: a `Latest=true` call is refused.
    """

    def __init__(self, instance_id: str, answers: list[Console | Refusal], latest_supported: bool = True) -> None:
        self.instance_id = instance_id
        self.answers = answers
        self.latest_supported = latest_supported
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                params = {key: values[0] for key, values in parse_qs(body).items()}
                status, document = emulator.answer(params, self.headers.get("Authorization", ""))
                payload = ET.tostring(document, encoding="utf-8", xml_declaration=True)
                self.send_response(status)
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, params: dict[str, str], authorization: str) -> tuple[int, ET.Element]:
        with self._lock:
            self.requests.append({**params, "Authorization": authorization})
            if params.get("Action") != "GetConsoleOutput" or params.get("Version") != "2016-11-15":
                return self._error(Refusal("InvalidAction", f"not emulated: {params.get('Action')}"))
            if not authorization.startswith("AWS4-HMAC-SHA256 Credential="):
                return self._error(Refusal("AuthFailure", "AWS was not able to validate the provided access credentials"))
            if params.get("InstanceId") != self.instance_id:
                return self._error(
                    Refusal("InvalidInstanceID.NotFound", f"The instance ID '{params.get('InstanceId')}' does not exist")
                )
            if params.get("Latest") == "true" and not self.latest_supported:
                # AWS does not document the code; the provider must not depend on it.
                return self._error(
                    Refusal("UnsupportedOperation", "The instance type does not support the latest console output.")
                )
            answer = self.answers[min(len(self.requests_for_console()) - 1, len(self.answers) - 1)]
        if isinstance(answer, Refusal):
            return self._error(answer)
        root = ET.Element("GetConsoleOutputResponse", xmlns=NAMESPACE)
        ET.SubElement(root, "requestId").text = str(uuid.uuid4())
        ET.SubElement(root, "instanceId").text = self.instance_id
        ET.SubElement(root, "timestamp").text = "2026-11-28T06:40:00.000Z"
        if answer.text is not None:
            ET.SubElement(root, "output").text = base64.b64encode(answer.text.encode()).decode()
        return 200, root

    def requests_for_console(self) -> list[dict]:
        """Requests that reached the console (right instance, and `Latest` only where supported)."""
        return [
            r
            for r in self.requests
            if r.get("InstanceId") == self.instance_id and (self.latest_supported or r.get("Latest") != "true")
        ]

    def _error(self, refusal: Refusal) -> tuple[int, ET.Element]:
        root = ET.Element("Response")
        error = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
        ET.SubElement(error, "Code").text = refusal.code
        ET.SubElement(error, "Message").text = refusal.message
        ET.SubElement(root, "RequestID").text = str(uuid.uuid4())
        return refusal.status, root

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
