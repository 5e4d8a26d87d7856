"""ConfirmedAlarmSubscribers: files/harbor-metrics.py counts the alarm topic's confirmed subscriptions
and puts the count into CloudWatch, so an alarm topic nobody listens to alarms (issue 19 point 6).

SNS is a botocore Stubber behind a loopback endpoint: the reporter's request must be what botocore's
own query serializer builds for ListSubscriptionsByTopic (and carry botocore's SigV4 signature for
service sns); the Stubber checks the parameters and validates each answer against the sns service
model, and the XML sent back is proven faithful by botocore's own query parser reading it back into
the Stubber's answer. The count lands in moto's CloudWatch (its JSON-protocol PutMetricData).
"""

from __future__ import annotations

import datetime
import http.server
import os
import subprocess
import sys
import threading
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import pytest

from components.settings.settings import parse_settings
from components.status import subscription_confirmed
from components.vm import operate_files
from components.vm.files import FILES_DIR
from tests.aws.test_alarms import CREDENTIALS, Loopback
from tests.settings.test_settings import dev_raw
from tests.standins.moto_server import moto_server

TOPIC = "arn:aws:sns:eu-central-1:123456789012:harbor-alarms-topic-1a2b3c4"
XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


def subscription(arn: str, endpoint: str, protocol: str = "email") -> dict:
    return {"SubscriptionArn": arn, "Owner": "123456789012", "Protocol": protocol, "Endpoint": endpoint, "TopicArn": TOPIC}


# SNS API Reference, Subscription / Subscribe: "PendingConfirmation" until the endpoint confirms.
PENDING = subscription("PendingConfirmation", "ops@cache-fixture.net")
CONFIRMED = subscription(f"{TOPIC}:80289ba6-0fd4-4079-afb4-ce8c8260f0ca", "oncall@cache-fixture.net")
CHATBOT = subscription(f"{TOPIC}:0f1e2d3c-4b5a-6978-8091-a2b3c4d5e6f7", "https://global.sns-api.chatbot.amazonaws.com", "https")
# An opaque token with characters the form and the XML must both carry intact.
TOKEN = "AAEBAf/8v+7MSvN8MkD9&xZH<CrFKL>6RQ7UHJ9PJhWOH5Yqvf1H8=="


def sns_model():
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    return ServiceModel(Loader().load_service_model("sns", "service-2"))


def answer_xml(page: dict) -> bytes:
    """SNS's query-protocol answer (SNS API Reference, ListSubscriptionsByTopic, Sample Response)."""
    members = "".join(
        "<member>" + "".join(f"<{key}>{escape(value)}</{key}>" for key, value in item.items()) + "</member>"
        for item in page["Subscriptions"]
    )
    token = f"<NextToken>{escape(page['NextToken'])}</NextToken>" if "NextToken" in page else ""
    return (
        f'<ListSubscriptionsByTopicResponse xmlns="{XMLNS}"><ListSubscriptionsByTopicResult>'
        f"<Subscriptions>{members}</Subscriptions>{token}</ListSubscriptionsByTopicResult>"
        "<ResponseMetadata><RequestId>b9275252-3774-11df-9540-99d0768312d3</RequestId></ResponseMetadata>"
        "</ListSubscriptionsByTopicResponse>"
    ).encode()


def error_xml(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>"
    ).encode()


class StubbedSns:
    """A loopback SNS endpoint whose answers come from a botocore Stubber of a real sns client."""

    def __init__(self, monkeypatch) -> None:
        import boto3
        from botocore.stub import Stubber

        self.client = boto3.client("sns", region_name="eu-central-1", aws_access_key_id="stub", aws_secret_access_key="stub")
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.requests: list[dict] = []
        self.failures: list[BaseException] = []
        self.monkeypatch = monkeypatch
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                outer.requests.append(request)
                try:
                    status, xml = outer.answer(request)
                except BaseException as error:  # the test fails on it below, not the reporter
                    outer.failures.append(error)
                    status, xml = 500, error_xml("InternalError", "stand-in failed")
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                self.wfile.write(xml)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, request: dict) -> tuple[int, bytes]:
        from botocore import serialize
        from botocore.exceptions import ClientError

        operation = sns_model().operation_model("ListSubscriptionsByTopic")
        form = {key: values[0] for key, values in parse_qs(request["body"].decode(), keep_blank_values=True).items()}
        params = {key: value for key, value in form.items() if key not in ("Action", "Version")}
        # The whole form, Action and Version included, is what the AWS SDK sends for these parameters.
        built = serialize.create_serializer("query").serialize_to_request(params, operation)
        assert form == built["body"], (form, built["body"])
        assert_signed_as_botocore_signs(request, self.url, self.monkeypatch)
        try:
            page = self.client.list_subscriptions_by_topic(**params)  # the Stubber checks the parameters
        except ClientError as error:
            details = error.response["Error"]
            return error.response["ResponseMetadata"]["HTTPStatusCode"], error_xml(details["Code"], details["Message"])
        page.pop("ResponseMetadata", None)
        xml = answer_xml(page)
        assert_parsed_by_botocore(xml, operation, page)
        return 200, xml

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def assert_parsed_by_botocore(xml: bytes, operation, page: dict) -> None:
    """botocore's query parser reads the answer back into exactly the Stubber's page."""
    from botocore.parsers import create_parser

    parsed = create_parser("query").parse({"body": xml, "headers": {}, "status_code": 200}, operation.output_shape)
    parsed.pop("ResponseMetadata", None)
    assert parsed == page


def assert_signed_as_botocore_signs(request: dict, url: str, monkeypatch) -> None:
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = request["headers"]
    when = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    aws_request = AWSRequest(method="POST", url=url, data=request["body"], headers={"Content-Type": headers["content-type"]})
    signer = SigV4Auth(
        Credentials(CREDENTIALS["AccessKeyId"], CREDENTIALS["SecretAccessKey"], CREDENTIALS["Token"]), "sns", "eu-central-1"
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: when)
    signer.add_auth(aws_request)
    assert headers["authorization"] == aws_request.headers["Authorization"]


@pytest.fixture(scope="module")
def cloudwatch():
    """moto's CloudWatch on loopback, and a boto3 client that reads from it."""
    import boto3

    with moto_server() as url:
        yield (
            url,
            boto3.client(
                "cloudwatch",
                region_name="eu-central-1",
                endpoint_url=url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ),
        )


def rendered_topic() -> str:
    """ALARM_TOPIC_ARN as the rendered harbor-metrics.service passes it."""
    settings = parse_settings(dev_raw(), stack="dev", region="eu-central-1")
    environment = operate_files.metrics_service(settings, 0, TOPIC)["Service"]["Environment"]
    (line,) = [line for line in environment if line.startswith("ALARM_TOPIC_ARN=")]
    return line.split("=", 1)[1]


def report(stack: str, cloudwatch_url: str, sns: StubbedSns, imds: Loopback) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "IMDS_ENDPOINT": imds.url,
        "HEALTH_URL": f"{imds.url}/api/v2.0/health",
        "CLOUDWATCH_ENDPOINT": f"{cloudwatch_url}/",
        "SNS_ENDPOINT": sns.url,
        "AWS_REGION": "eu-central-1",
        "HARBOR_CACHE_STACK": stack,
        "DATA_MOUNT": "/nonexistent",
        "ALARM_TOPIC_ARN": rendered_topic(),
    }
    return subprocess.run(
        [sys.executable, str(FILES_DIR / "harbor-metrics.py"), "report"], env=environment, capture_output=True, text=True
    )


def subscribers_in_cloudwatch(client, stack: str) -> list[float]:
    now = datetime.datetime.now(datetime.UTC)
    answer = client.get_metric_statistics(
        Namespace=f"HarborCache/{stack}",
        MetricName="ConfirmedAlarmSubscribers",
        Dimensions=[{"Name": "Stack", "Value": stack}],
        StartTime=now - datetime.timedelta(minutes=10),
        EndTime=now + datetime.timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )
    return [point["Maximum"] for point in answer["Datapoints"]]


@pytest.mark.parametrize(
    ("case", "pages", "expected"),
    [
        ("none", [{"Subscriptions": []}], 0),
        ("pending", [{"Subscriptions": [PENDING]}], 0),
        ("confirmed", [{"Subscriptions": [PENDING, CONFIRMED]}], 1),
        # Up to 100 a page (SNS API Reference): the count spans every page.
        ("paginated", [{"Subscriptions": [CONFIRMED, PENDING], "NextToken": TOKEN}, {"Subscriptions": [CHATBOT]}], 2),
    ],
)
def test_the_reporter_counts_confirmed_subscribers_into_cloudwatch(case, pages, expected, cloudwatch, monkeypatch):
    url, client = cloudwatch
    sns = StubbedSns(monkeypatch)
    imds = Loopback(health={"status": "healthy", "components": []})
    token = None
    for page in pages:
        sns.stubber.add_response(
            "list_subscriptions_by_topic", page, {"TopicArn": TOPIC, **({"NextToken": token} if token else {})}
        )
        token = page.get("NextToken")
    try:
        result = report(f"subscribers-{case}", url, sns, imds)
    finally:
        sns.stop()
        imds.stop()
    assert not sns.failures, sns.failures
    assert result.returncode == 0, result.stderr
    sns.stubber.assert_no_pending_responses()
    assert len(sns.requests) == len(pages)
    assert f"ConfirmedAlarmSubscribers={expected}" in result.stdout
    assert subscribers_in_cloudwatch(client, f"subscribers-{case}") == [float(expected)]
    # `status` asks the same question the same way.
    listed = [item for page in pages for item in page["Subscriptions"]]
    assert sum(subscription_confirmed(item["SubscriptionArn"]) for item in listed) == expected


def test_a_topic_the_reporter_cannot_read_puts_no_count(cloudwatch, monkeypatch):
    """SNS refuses (the role lost sns:ListSubscriptionsByTopic on this topic): no value at all, which
    the alarm treats as breaching, never a count that looks like someone listens."""
    url, client = cloudwatch
    sns = StubbedSns(monkeypatch)
    imds = Loopback(health={"status": "healthy", "components": []})
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/harbor-vm-role/i-0 is not authorized to perform: "
        f"SNS:ListSubscriptionsByTopic on resource: {TOPIC}"
    )
    sns.stubber.add_client_error("list_subscriptions_by_topic", "AuthorizationError", message, 403, {"TopicArn": TOPIC})
    try:
        result = report("subscribers-refused", url, sns, imds)
    finally:
        sns.stop()
        imds.stop()
    assert not sns.failures, sns.failures
    assert result.returncode == 0, result.stderr
    assert "SNS ListSubscriptionsByTopic: HTTP Error 403" in result.stderr
    assert "ConfirmedAlarmSubscribers" not in result.stdout
    assert "HarborHealthy=1" in result.stdout, "the other metrics still go out"
    assert subscribers_in_cloudwatch(client, "subscribers-refused") == []


def test_without_a_topic_the_reporter_asks_nobody():
    settings = parse_settings(dev_raw(), stack="dev", region="eu-central-1")
    assert not any(
        line.startswith("ALARM_TOPIC_ARN=") for line in operate_files.metrics_service(settings)["Service"]["Environment"]
    )
    assert rendered_topic() == TOPIC
