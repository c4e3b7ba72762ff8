"""moto's SQS server, served lean: ``python -m webhooks_cli.sqs_server --port N``.

(Over 400 lines: each patch to moto's internals sits next to the pin that makes it safe and
the test that proves it, in one place to read when moto is upgraded.)

This is moto's own SQS application (``create_backend_app("sqs")``), the one
``moto_server`` serves, on waitress instead of werkzeug's development server. Werkzeug
closes the connection after every response (a new TCP connection and a new thread per
SQS call) and logs each request; ``moto_server`` also works out the service from every
request's host and headers. Measured on two cores, this serves about 1.6x the calls/s
(bench/bench_sqs_server.py). boto3's calls (the JSON protocol) skip Flask and go to moto's
SQS responder directly (``json_protocol_lane``).

Everything below patches moto 5.2.5's internals (``pins`` refuses any other release). Each
patch says what it fixes and the test that proves it. A patch for speed has no pass/fail
test (the project allows no timing asserts): its figure is bench/bench_sqs_server.py's or
bench/harness.py's, and its test proves that the behaviour stayed moto's. Tests named
test_sqs_emulator.py::... are in tests/integration/. README's "Local runtime" section
tables them.
"""

from __future__ import annotations

import argparse
import base64
import contextvars
import copy
import functools
import json
import logging
import os
import signal
import string
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .pins import require_pinned

# every patch below replaces a moto 5.2.5 internal: another release fails here, by name
require_pinned("moto", "SQS emulator", extras="[server]")

import moto.core.responses as moto_responses  # noqa: E402
import moto.sqs.models as sqs_models  # noqa: E402
import waitress  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto.core import utils as moto_utils  # noqa: E402
from moto.core.request import Request as MotoRequest  # noqa: E402
from moto.moto_api import recorder  # noqa: E402
from moto.moto_server.werkzeug_app import create_backend_app  # noqa: E402
from moto.sqs.exceptions import ReceiptHandleIsInvalid  # noqa: E402
from moto.sqs.models import Message, Queue, SQSBackend  # noqa: E402
from moto.sqs.responses import SQSResponse  # noqa: E402
from werkzeug.exceptions import HTTPException, InternalServerError  # noqa: E402
from werkzeug.http import HTTP_STATUS_CODES  # noqa: E402

_T = TypeVar("_T")


def _unix_time(dt: Any = None) -> float:
    """moto's clock without building two datetimes per reading.

    moto reads the clock through ``utcnow()`` and ``utcfromtimestamp(0)`` (about 1.5 us)
    for every message a visibility check looks at; queue attributes, asked for on every
    send, look at every message three times. Same value from ``time.time()``.
    """
    return time.time() if dt is None else moto_utils.unix_time(dt)


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


# Fixes: speed, the clock read per message (visibility, delays, counts).
# Proven by: bench/bench_sqs_server.py; the same visible/delayed/in-flight answers:
#   test_sqs_emulator.py::test_queue_attributes_count_visible_in_flight_and_delayed
sqs_models.unix_time = _unix_time  # type: ignore[attr-defined]
sqs_models.unix_time_millis = _unix_time_millis  # type: ignore[attr-defined]


# Whether the running request asked for queue attributes. moto builds every attribute,
# the three counts (each a scan of the queue) included, whenever it reads any one: on
# every send, for a FIFO setting. Only GetQueueAttributes reads the counts.
_COUNTING: contextvars.ContextVar[bool] = contextvars.ContextVar("counting", default=False)


def _count(visible: bool | None = None, delayed: bool | None = None) -> Any:
    """An approximate-count property: one pass with one clock reading (moto calls a
    property per message, each reading the clock), and only for GetQueueAttributes."""

    def count(self: Queue) -> int:
        if not _COUNTING.get():
            return 0  # read by moto's send path only to be thrown away
        now = time.time() * 1000.0
        return sum(
            1
            for m in self._messages  # type: ignore[attr-defined]
            if (visible is None or (now > m.visible_at) == visible)
            and (delayed is None or (now < m.delayed_until) == delayed)
        )

    return property(count)


# Fixes: speed, three scans of the queue per SendMessage (moto builds every attribute).
# Proven by: bench/bench_sqs_server.py; the counts GetQueueAttributes answers:
#   test_sqs_emulator.py::test_queue_attributes_count_visible_in_flight_and_delayed
Queue.approximate_number_of_messages = _count(visible=True, delayed=False)  # type: ignore[method-assign,assignment]
Queue.approximate_number_of_messages_not_visible = _count(visible=False)  # type: ignore[method-assign,assignment]
Queue.approximate_number_of_messages_delayed = _count(delayed=True)  # type: ignore[method-assign,assignment]
_get_queue_attributes = SQSBackend.get_queue_attributes


def _get_queue_attributes_counting(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
    token = _COUNTING.set(True)
    try:
        return _get_queue_attributes(self, *args, **kwargs)
    finally:
        _COUNTING.reset(token)


SQSBackend.get_queue_attributes = _get_queue_attributes_counting  # type: ignore[method-assign]


def _retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's retention check, without building every queue attribute for each message.

    moto 5.2 computes all attributes (three scans of the whole queue) for every message a
    receive returns, so a receive costs O(depth x batch) and a backlog feeds on itself.
    Same rule, read from the one attribute it needs.
    """
    retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[arg-type,attr-defined]
    return retention + message.sent_timestamp / 1000 > time.time()  # type: ignore[operator]


# Fixes: speed, a receive costing O(depth x batch): a backlog fed on itself.
# Proven by: bench/harness.py throughput; the same rule as moto's for young and old messages:
#   test_sqs_emulator.py::test_the_retention_check_keeps_and_drops_what_moto_does
SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]

# How often a waiting long poll looks again for messages that became visible by time
# passing (a delay or a visibility timeout running out) rather than by a send.
RECHECK_SECONDS = 0.05


def _wait_for_messages(self: Queue, timeout: int) -> None:
    """moto's long poll, noticing time-based visibility within 50 ms instead of 1 s.

    moto wakes a waiting receive on a send, but a message whose DelaySeconds or visibility
    timeout runs out is only seen at the next 1 s tick; SQS returns it to a long poll at
    once. Deferred deliveries (rate limits) and retries depend on that.
    """
    with self._messages_lock:  # type: ignore[attr-defined]
        self._messages_lock.wait_for(lambda: self.messages, timeout=min(timeout, RECHECK_SECONDS))  # type: ignore[attr-defined]


# Fixes: a retry or deferred delivery (DelaySeconds, a visibility timeout running out) seen
# by a waiting long poll up to 1 s late. Proven by: bench/harness.py latency. No pass/fail
# test: "50 ms instead of 1 s" is a duration, and the suite asserts no timings.
Queue.wait_for_messages = _wait_for_messages  # type: ignore[method-assign]


def _copy_for_reply(value: _T, memo: dict[int, Any] | None = None, _nil: Any = None) -> _T:
    """What moto's receive calls for ``deepcopy``: a shallow copy of a received message.

    moto copies each message it returns so that filtering the copy's attributes for the
    reply leaves the stored message alone; the filter assigns the copy a new dict, so a
    shallow copy keeps that promise. The deep copy of a message (its body, attribute dicts,
    old receipt handles) was an eighth of the emulator's CPU in the seed's throughput case.
    Everything else moto deep-copies there (the pending message groups) is copied deep.
    """
    return copy.copy(value) if isinstance(value, Message) else copy.deepcopy(value, memo)


# Fixes: speed (an eighth of the emulator's CPU). Proven by: bench/harness.py throughput;
# filtering the reply's copy leaves the stored message whole:
#   test_sqs_emulator.py::test_a_receive_that_filters_attributes_leaves_the_stored_message_whole
sqs_models.deepcopy = _copy_for_reply  # type: ignore[attr-defined,assignment]

_receive_message = SQSBackend.receive_message


def _receive_one_scan_at_a_time(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
    """moto's receive, its scan of the queue under the queue's lock.

    moto checks a message's visibility and marks it received in two steps, so two receives
    at once (waitress serves them on parallel threads, from any number of processes) can
    both take the same message: a duplicate delivery. The lock is the queue's condition
    (re-entrant), which a long poll's wait releases, so waiting receives do not block others.
    """
    with self.get_queue(queue_name)._messages_lock:  # type: ignore[attr-defined]
        return _receive_message(self, queue_name, *args, **kwargs)


# Fixes: duplicate deliveries (two receives taking one message). Proven by (it fails without):
#   test_sqs_emulator.py::test_receives_at_once_never_take_the_same_message
SQSBackend.receive_message = _receive_one_scan_at_a_time  # type: ignore[method-assign]


def _delete_handles(queue: Queue, handles: set[str]) -> set[str]:
    """moto's delete (any receipt handle a message ever had), for a set of handles, under
    the queue's lock, in one pass; returns the handles that deleted (or had already).

    moto deletes by rebuilding the message list from a snapshot and assigning it back,
    without the lock its sends append under. A send landing meanwhile was dropped (a lost
    message), and of two deletes at once the last undid the first (a delivered message
    back in flight, redelivered after its visibility timeout). Seen once the emulator got
    fast: 8 of 2,000 webhooks lost and 66 redelivered in the seed's throughput case.
    It also scanned the queue twice per handle, building a list of handles per message,
    and DeleteMessageBatch made one such delete per handle: a pass over the whole backlog
    for each.
    """
    with queue._messages_lock:  # type: ignore[attr-defined]
        done = {h for h in handles if h in queue.deleted_messages}  # type: ignore[attr-defined]
        kept = []
        for message in queue._messages:  # type: ignore[attr-defined]
            if message.receipt_handle in handles or any(h in handles for h in message._old_receipt_handles):
                every = message.all_receipt_handles
                done.update(h for h in every if h in handles)  # type: ignore[misc]
                queue.pending_messages.discard(message)  # type: ignore[attr-defined]
                queue.deleted_messages.update(every)  # type: ignore[attr-defined,arg-type]
            else:
                kept.append(message)
        queue._messages = kept  # type: ignore[attr-defined]
    return done


def _delete_one(self: Queue, receipt_handle: str) -> None:
    if receipt_handle not in _delete_handles(self, {receipt_handle}):
        raise ReceiptHandleIsInvalid()


# Fixes: sends lost and deleted messages redelivered (deletes racing sends and each other);
# speed, one pass per batch instead of two per handle. Proven by (the first fails without):
#   test_sqs_emulator.py::test_deletes_racing_sends_neither_lose_nor_bring_back_messages
#   test_sqs_emulator.py::test_a_batch_delete_takes_its_messages_in_one_pass_and_names_bad_handles
Queue.delete_message = _delete_one  # type: ignore[method-assign]


def _delete_batch_in_one_pass(
    self: SQSBackend, queue_name: str, receipts: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """moto's DeleteMessageBatch, answered as moto does, from one pass over the queue."""
    wanted = {r["ReceiptHandle"]: r["Id"] for r in receipts}
    done = _delete_handles(self.get_queue(queue_name), set(wanted))
    success = [wanted[h] for h in wanted if h in done]
    errors = [
        {
            "Id": wanted[h],
            "SenderFault": True,
            "Code": "ReceiptHandleIsInvalid",
            "Message": f'The input receipt handle "{h}" is not a valid receipt handle.',
        }
        for h in wanted
        if h not in done
    ]
    return success, errors


SQSBackend.delete_message_batch = _delete_batch_in_one_pass  # type: ignore[method-assign]


# moto writes every response by walking botocore's model of the operation, member by member
# (a third of its CPU in the seed's throughput case). The four calls the pipeline makes per
# message return plain dicts whose keys are the wire names already: JSON-protocol requests
# for them get those dicts written with json.dumps (blobs base64, as the protocol has them).
# tests/integration/test_sqs_emulator.py checks both writers give the same document.
FAST_ACTIONS = frozenset({"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"})
_serialized = SQSResponse.serialized


def _blob(value: Any) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _serialized_plainly(self: SQSResponse, action_result: Any) -> Any:
    result = action_result.result
    if (
        isinstance(result, dict)
        and self.headers.get("Content-Type", "").startswith("application/x-amz-json")
        and self._get_action() in FAST_ACTIONS
    ):
        headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
        return 200, headers, json.dumps(result, default=_blob, separators=(",", ":"))
    return _serialized(self, action_result)


# Fixes: speed (a third of moto's CPU). Proven by: bench/bench_sqs_server.py; the same documents:
#   test_sqs_emulator.py::test_the_hot_calls_answer_the_document_moto_writes
SQSResponse.serialized = _serialized_plainly  # type: ignore[method-assign,assignment]


# --- per-request costs: in-process, moto's SQS app spent about a third of each call in
# three helpers (bench/bench_sqs_server.py measures the launch)

# moto converts the action name (SendMessage -> send_message) and lists its response
# class's methods (inspect.getmembers) on every request: the same answers each time.
# Fixes: speed. Proven by: bench/bench_sqs_server.py; both are pure functions, cached: every
# call of tests/integration/test_sqs_emulator.py goes through them.
_underscored = functools.lru_cache(maxsize=1024)(moto_utils.camelcase_to_underscores)
moto_responses.camelcase_to_underscores = _underscored  # type: ignore[attr-defined]
sqs_models.camelcase_to_underscores = _underscored  # type: ignore[attr-defined]  # queue attributes
moto_responses.method_names_from_class = functools.lru_cache(maxsize=64)(  # type: ignore[attr-defined]
    moto_utils.method_names_from_class
)

# moto draws receipt handles (185 letters, one per message received) and request ids (52
# characters, one per call) a character at a time through random.choice. Same shapes
# from one os.urandom read each; nothing depends on the letters beyond being unique.
_LOWER = bytes(ord("a") + n % 26 for n in range(256))
_ALNUM = bytes(ord((string.ascii_letters + string.digits)[n % 62]) for n in range(256))


def _receipt_handle() -> str:
    return os.urandom(185).translate(_LOWER).decode("ascii")


def _request_id(headerdict: dict[str, Any] | None = None) -> str:
    request_id = os.urandom(52).translate(_ALNUM).decode("ascii")
    if isinstance(headerdict, dict):
        headerdict["x-amzn-requestid"] = request_id
    return request_id


# Fixes: speed. Proven by: bench/bench_sqs_server.py; same shapes, fresh each time:
#   test_sqs_emulator.py::test_receipt_handles_and_request_ids_are_fresh_per_receive_and_call
sqs_models.generate_receipt_handle = _receipt_handle  # type: ignore[attr-defined]
moto_responses.gen_amzn_requestid_long = _request_id  # type: ignore[attr-defined]


# --- every boto3 call straight to moto's SQS responder: Flask's routing, request context,
# CORS pass and response object cost about a third of a SendMessage's CPU in the server
# (the JSON protocol always posts to "/", so there is nothing to route)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ServerRequest(MotoRequest):
    from_wsgi_server = True  # as moto's own Flask request class: the server writes Date


def _status_line(code: int) -> str:
    return f"{code} {HTTP_STATUS_CODES.get(code, 'Unknown').upper()}"  # as werkzeug writes it


def json_protocol_lane(app: WsgiApp) -> WsgiApp:
    """``app`` with JSON-protocol SQS calls answered by moto's ``SQSResponse`` directly, as
    moto's Flask view does (``convert_to_flask_response``); anything else (the query
    protocol, a browser's CORS request, other paths) goes to ``app``.

    Not a patch, but it calls moto's internals (``Request``, ``recorder._record_request``,
    ``SQSResponse.dispatch``) as moto's Flask view does. Fixes: speed (a third of a
    SendMessage's CPU). Proven by: bench/bench_sqs_server.py; the answers Flask gives:
    test_sqs_emulator.py::test_json_calls_skip_flask_and_get_the_answer_flask_gives
    and ::test_query_protocol_and_browser_calls_still_reach_moto_through_flask."""

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or environ.get("PATH_INFO") != "/"
            or not environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS.")
            or "HTTP_ORIGIN" in environ
        ):
            return app(environ, start_response)
        request = _ServerRequest(environ)
        try:
            recorder._record_request(request)
            result = SQSResponse.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        except HTTPException as exc:  # moto's service errors are werkzeug exceptions
            return exc(environ, start_response)
        except Exception:
            logging.getLogger("webhooks.sqs").exception("SQS call failed")
            return InternalServerError()(environ, start_response)
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        body = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
        out = [(name, str(value)) for name, value in headers.items() if name.lower() != "content-length"]
        start_response(_status_line(int(status)), [*out, ("Content-Length", str(len(body)))])
        return [body]

    return serve


# --- queues kept across a restart of `webhooks local` (moto 5.2 keeps its backend in memory
# only): at a clean stop (SIGTERM) every message of every queue, visible, delayed, in flight
# or dead-lettered, is written to a JSON file; the next start reads it and puts each message
# back when its queue is created again, with the same id, body, attributes, sent time,
# receive count and the same moments of becoming visible (wall clock: a retry due while the
# runtime was stopped is due at once). Receipt handles are not kept: whoever held one is gone.
SNAPSHOT_VERSION = 1
_restored: dict[tuple[str, str, str], list[dict[str, Any]]] = {}  # (account, region, queue) -> messages


def _message_record(message: Message) -> dict[str, Any]:
    attributes = {
        name: {k: (base64.b64encode(v).decode() if isinstance(v, bytes) else v) for k, v in value.items()}
        for name, value in message.message_attributes.items()
    }
    return {
        "id": message.id,
        "body": message.body,
        "attributes": attributes,
        "binary": sorted(
            n for n, v in message.message_attributes.items() if isinstance(v.get("BinaryValue"), bytes)
        ),
        "systemAttributes": message.system_attributes,
        "sentTimestamp": message.sent_timestamp,
        "firstReceiveTimestamp": message.approximate_first_receive_timestamp,
        "receiveCount": message.approximate_receive_count,
        "visibleAt": message.visible_at,
        "delayedUntil": message.delayed_until,
        "groupId": message.group_id,
        "deduplicationId": message.deduplication_id,
        "sequenceNumber": message.sequence_number,
    }


def _message_from(record: dict[str, Any]) -> Message:
    message = Message(record["id"], record["body"], record.get("systemAttributes") or {})
    attributes = record.get("attributes") or {}
    for name in record.get("binary") or []:
        attributes[name]["BinaryValue"] = base64.b64decode(attributes[name]["BinaryValue"])
    message.message_attributes = attributes
    message.sent_timestamp = record.get("sentTimestamp")
    message.approximate_first_receive_timestamp = record.get("firstReceiveTimestamp")
    message.approximate_receive_count = int(record.get("receiveCount") or 0)
    message.visible_at = float(record.get("visibleAt") or 0.0)
    message.delayed_until = float(record.get("delayedUntil") or 0.0)
    message.group_id = record.get("groupId")
    message.deduplication_id = record.get("deduplicationId")
    message.sequence_number = record.get("sequenceNumber")
    message.receipt_handle = _receipt_handle()
    return message


def save_snapshot(path: str) -> int:
    """Every queue's messages to ``path`` (written whole, then renamed); returns how many."""
    queues = []
    for account_id, regions in sqs_models.sqs_backends.items():
        for region, backend in regions.items():
            for name, queue in backend.queues.items():
                with queue._messages_lock:  # type: ignore[attr-defined]
                    messages = [_message_record(m) for m in queue._messages]  # type: ignore[attr-defined]
                queues.append({"account": account_id, "region": region, "name": name, "messages": messages})
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump({"version": SNAPSHOT_VERSION, "savedAt": time.time(), "queues": queues}, out)
    os.replace(tmp, path)
    return sum(len(q["messages"]) for q in queues)


def load_snapshot(path: str) -> int:
    """Read ``path`` (if there) for the queues' next creation; returns how many messages.

    The file is removed once read: a run that then crashes must not bring back, at the next
    start, messages it had delivered and deleted."""
    try:
        with open(path, encoding="utf-8") as source:
            snapshot = json.load(source)
    except FileNotFoundError:
        return 0
    os.replace(path, f"{path}.loaded")  # kept for a look, never read again
    for queue in snapshot.get("queues", []):
        _restored[(queue["account"], queue["region"], queue["name"])] = queue["messages"]
    return sum(len(m) for m in _restored.values())


_create_queue = SQSBackend.create_queue


def _create_queue_restoring(self: SQSBackend, name: str, *args: Any, **kwargs: Any) -> Queue:
    """moto's CreateQueue; a queue of the snapshot gets its messages back when it is created."""
    queue = _create_queue(self, name, *args, **kwargs)
    records = _restored.pop((self.account_id, self.region_name, name), None)
    if records:
        with queue._messages_lock:  # type: ignore[attr-defined]
            queue._messages.extend(_message_from(r) for r in records)  # type: ignore[attr-defined]
            queue._messages_lock.notify_all()  # type: ignore[attr-defined]
    return queue


# Fixes: queues emptied by a restart of `webhooks local` (moto keeps them in memory only).
# Proven by: tests/e2e/test_local_runtime.py::test_dead_letters_and_retries_waiting_survive_a_stop_and_start
SQSBackend.create_queue = _create_queue_restoring  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16, help="request threads (long polls hold one each)")
    parser.add_argument(
        "--state-file", help="keep the queues' messages here across a stop and the next start (JSON)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.state_file:
        print(f"restored {load_snapshot(args.state_file)} messages from {args.state_file}", flush=True)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" chatter
    print(f"moto SQS server on http://{args.host}:{args.port}", flush=True)
    app = create_backend_app("sqs")
    # moto turns Flask's debug mode on; in it Flask builds a helper class for every request
    # that has a body (its form-data check), and nothing here needs the debugger. Only the
    # calls json_protocol_lane hands on pass through Flask now (the query protocol, browsers).
    app.debug = False
    try:
        waitress.serve(
            json_protocol_lane(app),
            host=args.host,
            port=args.port,
            threads=args.threads,
            connection_limit=1000,
            channel_timeout=120,
            _quiet=True,
        )
    finally:  # SIGTERM (the runtime's stop, or its death: see servers._die_with_parent)
        if args.state_file:
            print(f"saved {save_snapshot(args.state_file)} messages to {args.state_file}", flush=True)


if __name__ == "__main__":
    main()
