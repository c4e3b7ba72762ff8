"""The local SQS emulator (moto's app as `webhooks local` serves it) keeps every message
under concurrent calls, as SQS does.

These start their own emulator: they are about our launch of it, whatever SQS endpoint
the rest of the suite runs against. Its threads switch almost at every bytecode (CPython's
default: every 5 ms), so that a race between two steps of moto's, which the default lets
through about once in many thousand calls, shows within a few thousand: without
``_receive_one_scan_at_a_time``, 1 to 7 of 2,000 messages were taken twice in most rounds of
test_receives_at_once_never_take_the_same_message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from webhooks_cli.servers import LOOPBACK, _spawn, free_port

from support import sqs_client_for

SWITCHING = (
    "import sys; sys.setswitchinterval(1e-6); from webhooks_cli.sqs_server import main; main(sys.argv[1:])"
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-c", SWITCHING, "--host", LOOPBACK, "--port", str(port)]
    server = _spawn("SQS emulator", argv, port, None, 20)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.stop()


def _send(client: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        assert not client.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def _receive_all(client: Any, url: str, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(count):  # at most one round per message: a stuck queue fails, not hangs
        if len(got) >= count:
            break
        got += client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    return got


def _counts(client: Any, url: str) -> tuple[int, int]:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_deletes_racing_sends_neither_lose_nor_bring_back_messages(emulator: str) -> None:
    """moto rebuilds its message list on delete without the lock sends take: a send could
    vanish, and of two deletes at once the second could put the first's message back."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="race", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    first = [f"old-{n}" for n in range(2000)]
    _send(client, url, first)
    received = _receive_all(client, url, len(first))
    assert sorted(m["Body"] for m in received) == sorted(first)

    fresh = [f"new-{n}" for n in range(1000)]
    chunks = [received[n : n + 10] for n in range(0, len(received), 10)]
    failures: list[Any] = []

    def delete(part: list[list[dict[str, Any]]]) -> None:
        own = sqs_client_for(emulator)
        for chunk in part:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            failures.extend(own.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed", []))

    def send(part: list[str]) -> None:
        _send(sqs_client_for(emulator), url, part)

    threads = [threading.Thread(target=delete, args=(chunks[n::8],)) for n in range(8)]
    threads += [threading.Thread(target=send, args=(fresh[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    assert _counts(client, url) == (len(fresh), 0)  # every new one there, no deleted one in flight
    assert sorted(m["Body"] for m in _receive_all(client, url, len(fresh))) == sorted(fresh)


def test_receives_at_once_never_take_the_same_message(emulator: str) -> None:
    """moto checks that a message is visible and marks it received in two steps: two
    receives at once (waitress threads) could both take it, a duplicate delivery."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="receive-race", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for _ in range(5):  # without the fix, most rounds took some message twice
        sent = [f"m{n}" for n in range(2000)]
        _send(client, url, sent)
        taken: list[str] = []

        def receive(into: list[str] = taken) -> None:
            own = sqs_client_for(emulator)
            while messages := own.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                into.extend(m["MessageId"] for m in messages)  # list.extend: atomic under the GIL

        threads = [threading.Thread(target=receive) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(taken) == len(set(taken)) == len(sent)


RETENTION_AGREES = r"""
import time
from moto.sqs.models import Message, SQSBackend, sqs_backends

moto_rule = SQSBackend.is_message_valid_based_on_retention_period
from webhooks_cli import sqs_server  # noqa: E402  patches the rule

backend = sqs_backends["123456789012"]["us-east-1"]
backend.create_queue("kept", MessageRetentionPeriod="60")
for age in (0, 30, 59, 61, 600):
    message = Message("m", "body")
    message.sent_timestamp = int((time.time() - age) * 1000)
    ours = sqs_server._retained(backend, "kept", message)
    assert ours == moto_rule(backend, "kept", message) == (age < 60), (age, ours)
print("retention agrees")
"""


def test_the_retention_check_keeps_and_drops_what_moto_does() -> None:
    """The emulator's retention check reads the one attribute it needs (moto built all of
    them, three scans of the queue, per received message): for messages younger and older
    than the queue's MessageRetentionPeriod it answers as moto's. In a process of its own:
    importing the launch patches moto."""
    done = subprocess.run(
        [sys.executable, "-c", RETENTION_AGREES], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "retention agrees"


def test_queue_attributes_count_visible_in_flight_and_delayed(emulator: str) -> None:
    """The emulator counts these in one pass (moto's way read the clock per message)."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="counts", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    _send(client, url, [f"m{n}" for n in range(5)])
    client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert len(client.receive_message(QueueUrl=url, MaxNumberOfMessages=2).get("Messages", [])) == 2
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "3"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_receipt_handles_and_request_ids_are_fresh_per_receive_and_call(emulator: str) -> None:
    """Our launch draws them from os.urandom instead of moto's letter-at-a-time loop: each
    receive still gets a new handle, the previous one still deletes, request ids differ."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="handles", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="one")
    seen = []
    for _ in range(3):
        reply = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        [message] = reply["Messages"]
        seen.append((message["ReceiptHandle"], reply["ResponseMetadata"]["RequestId"]))
    handles, request_ids = zip(*seen, strict=True)
    assert len(set(handles)) == 3 and all(len(h) == 185 and h.isalpha() and h.islower() for h in handles)
    assert len(set(request_ids)) == 3 and all(len(r) == 52 and r.isalnum() for r in request_ids)
    client.delete_message(QueueUrl=url, ReceiptHandle=handles[0])  # an older handle of the message
    assert client.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_batch_delete_takes_its_messages_in_one_pass_and_names_bad_handles(emulator: str) -> None:
    """One scan of the queue for the whole batch (moto scanned once per handle): every good
    handle deletes its message, an older handle of a message still does, a handle already
    used succeeds again, and an unknown one is reported by its entry id."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="batch-delete", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    _send(client, url, [f"m{n}" for n in range(6)])
    first = _receive_all(client, url, 6)
    again = {m["MessageId"]: m["ReceiptHandle"] for m in _receive_all(client, url, 6)}
    assert len(first) == 6 and len(again) == 6
    entries = [{"Id": f"old{n}", "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(first[:2])]
    entries += [{"Id": f"new{n}", "ReceiptHandle": again[m["MessageId"]]} for n, m in enumerate(first[2:5])]
    entries.append({"Id": "bogus", "ReceiptHandle": "not-a-handle"})
    reply = client.delete_message_batch(QueueUrl=url, Entries=entries)
    assert sorted(s["Id"] for s in reply["Successful"]) == ["new0", "new1", "new2", "old0", "old1"]
    [failed] = reply["Failed"]
    assert failed["Id"] == "bogus" and failed["Code"] == "ReceiptHandleIsInvalid" and failed["SenderFault"]
    repeat = client.delete_message_batch(QueueUrl=url, Entries=entries[:1])
    assert [s["Id"] for s in repeat["Successful"]] == ["old0"]
    left = _receive_all(client, url, 1)
    assert [m["Body"] for m in left] == [first[5]["Body"]]


WRITERS_AGREE = r"""
import json
from moto.core.responses import ActionResult
from moto.sqs.responses import SQSResponse
from webhooks_cli import sqs_server

message = {
    "MessageId": "m1",
    "ReceiptHandle": "rh",
    "MD5OfBody": "x",
    "Body": "h\u00e9llo \u2028 \U0001f600",
    "MessageAttributes": {
        "s": {"StringValue": "x", "DataType": "String"},
        "b": {"BinaryValue": b"\x00\xff", "DataType": "Binary"},
    },
    "MD5OfMessageAttributes": "y",
    "Attributes": {"SenderId": "s", "ApproximateReceiveCount": "2"},
}
results = {
    "ReceiveMessage": [{"Messages": [message]}, {}],
    "SendMessage": [{"MD5OfMessageBody": "x", "MessageId": "m1", "MD5OfMessageAttributes": "y"}],
    "SendMessageBatch": [
        {
            "Successful": [{"Id": "0", "MessageId": "m1", "MD5OfMessageBody": "x"}],
            "Failed": [{"Id": "1", "SenderFault": True, "Code": "C", "Message": "too big"}],
        }
    ],
    "DeleteMessageBatch": [{"Successful": [{"Id": "0"}], "Failed": []}],
}
assert set(results) == sqs_server.FAST_ACTIONS
response = SQSResponse()
response.headers = {"Content-Type": "application/x-amz-json-1.0"}
response.response_headers = {}
for action, cases in results.items():
    response._get_action = lambda action=action: action
    for result in cases:
        ours = sqs_server._serialized_plainly(response, ActionResult(result))
        moto = sqs_server._serialized(response, ActionResult(result))
        assert ours[0] == moto[0] == 200
        assert ours[1]["Content-Type"] == moto[1]["Content-Type"]
        assert json.loads(ours[2]) == json.loads(moto[2]), (action, ours[2], moto[2])
        assert result == {} or ours[2] != moto[2]  # written by the other writer, not passed through
print("writers agree")
"""


def test_the_hot_calls_answer_the_document_moto_writes() -> None:
    """Send, send-batch, receive and delete-batch answers are written with json.dumps instead
    of moto's walk through the operation's model: the same document, blobs in base64. In a
    process of its own: importing the launch patches moto, which this suite also uses
    in-process."""
    done = subprocess.run([sys.executable, "-c", WRITERS_AGREE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "writers agree"


def test_messages_with_every_attribute_type_come_back_exactly(emulator: str) -> None:
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="attributes")["QueueUrl"]
    attributes = {
        "text": {"DataType": "String", "StringValue": "\u00e9\u2028\U0001f600"},
        "number": {"DataType": "Number", "StringValue": "-1.5e3"},
        "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    }
    body = '{"a": "\\u0000 \u00e9 \U0001f600"}'
    client.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "0", "MessageBody": body, "MessageAttributes": attributes}]
    )
    got: list[dict[str, Any]] = []
    for _ in range(2):
        got += client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
    assert len(got) == 2
    for message in got:
        assert message["Body"] == body
        assert message["MessageAttributes"]["blob"]["BinaryValue"] == bytes(range(256))
        assert message["MessageAttributes"]["text"]["StringValue"] == "\u00e9\u2028\U0001f600"


LANE_AGREES = r"""
import io
import json
import sys

from moto.moto_server.werkzeug_app import create_backend_app
from moto.sqs.models import sqs_backends

from webhooks_cli import sqs_server

flask_app = create_backend_app("sqs")
flask_app.debug = False
through_flask = []


def counting_flask(environ, start_response):
    through_flask.append(environ["HTTP_X_AMZ_TARGET"])
    return flask_app(environ, start_response)


lane = sqs_server.json_protocol_lane(counting_flask)
URL = "http://127.0.0.1:5000/123456789012/q"
CALLS = [
    ("CreateQueue", {"QueueName": "q", "Attributes": {"VisibilityTimeout": "0"}}),
    ("SendMessage", {"QueueUrl": URL, "MessageBody": "h\u00e9llo", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}),
    ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "1"}, {"Id": "b", "MessageBody": "2", "DelaySeconds": 0}]}),
    ("SendMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": "a", "MessageBody": "1"}, {"Id": "a", "MessageBody": "2"}]}),
    ("ReceiveMessage", {"QueueUrl": URL, "MaxNumberOfMessages": 10, "MessageSystemAttributeNames": ["ApproximateReceiveCount"], "MessageAttributeNames": ["All"]}),
    ("GetQueueAttributes", {"QueueUrl": URL, "AttributeNames": ["ApproximateNumberOfMessages", "VisibilityTimeout"]}),
    ("DeleteMessage", {"QueueUrl": URL, "ReceiptHandle": "not-a-handle"}),
    ("DeleteMessageBatch", {"QueueUrl": URL, "Entries": [{"Id": "x", "ReceiptHandle": "not-a-handle"}]}),
    ("SendMessage", {"QueueUrl": "http://127.0.0.1:5000/123456789012/missing", "MessageBody": "x"}),
    ("SendMessage", {"QueueUrl": URL}),
    ("NoSuchAction", {"QueueUrl": URL}),
    ("SendMessage", "{not json"),
]
VOLATILE = {"MessageId", "ReceiptHandle", "SenderId", "SentTimestamp", "ApproximateFirstReceiveTimestamp"}


def environ(action, payload):
    body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:5000",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/x-amz-json-1.0",
        "HTTP_X_AMZ_TARGET": f"AmazonSQS.{action}",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=x/20261129/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
    }


def scrub(value):
    if isinstance(value, dict):
        return {k: ("*" if k in VOLATILE else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def run(app):
    sqs_backends.reset()
    answers = []
    for action, payload in CALLS:
        seen = {}
        body = b"".join(app(environ(action, payload), lambda status, headers, exc=None: seen.update(status=status, headers=dict(headers))))
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        assert int(headers["content-length"]) == len(body), (action, headers)
        try:
            document = scrub(json.loads(body))
        except ValueError:
            document = body.decode()
        answers.append((action, seen["status"], headers.get("content-type"), document))
    return answers


via_flask, via_lane = run(flask_app), run(lane)
assert through_flask == [], through_flask  # the lane answered every one itself
for ours, theirs in zip(via_lane, via_flask, strict=True):
    assert ours == theirs, (ours, theirs)
statuses = [a[1] for a in via_lane]
assert statuses.count("200 OK") >= 5 and any(s.startswith("400") for s in statuses), statuses
print("lane agrees")
"""


def test_json_calls_skip_flask_and_get_the_answer_flask_gives() -> None:
    """JSON-protocol calls go to moto's SQS responder without Flask's routing and response
    object: for sends, receives, attributes and every kind of error (missing queue, repeated
    batch ids, bad handle, missing parameter, unknown action, malformed JSON) the status,
    content type and document are those moto's Flask app gives. In a process of its own:
    importing the launch patches moto."""
    done = subprocess.run([sys.executable, "-c", LANE_AGREES], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "lane agrees"


def test_query_protocol_and_browser_calls_still_reach_moto_through_flask(emulator: str) -> None:
    """The lane takes only boto3's JSON calls: the query protocol (form-encoded, XML answers)
    and calls from a browser (an Origin header, answered with CORS headers) are served as
    moto serves them."""
    auth = (
        "AWS4-HMAC-SHA256 Credential=x/20261129/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0"
    )
    form = urllib.request.Request(
        f"{emulator}/",
        data=b"Action=CreateQueue&QueueName=via-query&Version=2012-11-05",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth},
    )
    with urllib.request.urlopen(form, timeout=10) as reply:
        assert b"<CreateQueueResult><QueueUrl>" in reply.read()
    browser = urllib.request.Request(
        f"{emulator}/",
        data=b'{"QueueNamePrefix": "via-query"}',
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS.ListQueues",
            "Authorization": auth,
            "Origin": "http://127.0.0.1:1",
        },
    )
    with urllib.request.urlopen(browser, timeout=10) as reply:
        assert reply.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:1"
        [url] = json.loads(reply.read())["QueueUrls"]
    assert sqs_client_for(emulator).get_queue_url(QueueName="via-query")["QueueUrl"] == url


def test_a_receive_that_filters_attributes_leaves_the_stored_message_whole(emulator: str) -> None:
    # the reply is built from a copy of each message; filtering the copy's attributes must
    # neither reach the stored message nor freeze the copy's receive count into it
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="filtered", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    attributes = {
        "reason": {"DataType": "String", "StringValue": "timeout"},
        "partnerId": {"DataType": "String", "StringValue": "p1"},
        "x.trace": {"DataType": "String", "StringValue": "t1"},
    }
    client.send_message(QueueUrl=url, MessageBody="kept", MessageAttributes=attributes)
    kwargs: dict[str, Any] = {"QueueUrl": url, "WaitTimeSeconds": 2, "MessageSystemAttributeNames": ["All"]}
    [first] = client.receive_message(**kwargs, MessageAttributeNames=["reason"])["Messages"]
    assert set(first["MessageAttributes"]) == {"reason"}
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    [second] = client.receive_message(**kwargs, MessageAttributeNames=["x.*"])["Messages"]
    assert set(second["MessageAttributes"]) == {"x.trace"}
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    [third] = client.receive_message(**kwargs, MessageAttributeNames=["All"])["Messages"]
    assert third["MessageAttributes"] == {
        name: {"StringValue": value["StringValue"], "DataType": "String"}
        for name, value in attributes.items()
    }
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in (first, second, third)] == ["1", "2", "3"]
    assert third["Body"] == "kept" and third["ReceiptHandle"] not in (
        first["ReceiptHandle"],
        second["ReceiptHandle"],
    )
    client.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
