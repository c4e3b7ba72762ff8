"""The ``make run`` demo: a receiver that prints each webhook with its verified signatures."""

from __future__ import annotations

import json
import secrets
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from webhooks.delivery.signing import generate_secret, verify_recart_signature, verify_standard_signature
from webhooks.partners.store import PartnerStore

DEMO_NAME = "demo-partner"
DEMO_EVENTS = ["order.*", "customer.created"]
SAMPLE_EVENTS = [
    {"eventType": "order.created", "data": {"orderId": "1234", "customerId": "cust_42", "total": 99.99}},
    {"eventType": "order.updated", "data": {"orderId": "1234", "status": "shipped"}},
    {"eventType": "customer.created", "data": {"customerId": "cust_42", "email": "jane@example.com"}},
]


class DemoReceiver:
    def __init__(self, secret: str, out: Any) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.show(body, dict(self.headers.items()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.secret = secret
        self.out = out
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks"
        self._lock = threading.Lock()

    def show(self, body: bytes, headers: dict[str, str]) -> None:
        recart = verify_recart_signature(body, self.secret, headers.get("X-Recart-Signature-256", ""))
        standard = verify_standard_signature(body, headers, self.secret)
        verdict = "verified" if recart and standard else "SIGNATURE MISMATCH"
        text = (
            f"[demo receiver] {headers.get('X-Recart-Event-Type')} {headers.get('X-Recart-Event-Id')} "
            f"signatures {verdict} (X-Recart-Signature-256: {recart}, webhook-signature: {standard})\n"
            f"    {body.decode('utf-8', 'replace')}\n"
        )
        with self._lock:  # one write, newline included: a log line from another thread
            self.out.write(text)  # (written whole, as logging writes) never lands inside it
            self.out.flush()

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, name="demo-receiver", daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def demo_credentials(data_dir: Path) -> tuple[str, str]:
    """The demo partner's API key and secret, kept under .local/ so they survive restarts."""
    path = data_dir / "demo-partner.json"
    try:
        saved = json.loads(path.read_text())
        return saved["apiKey"], saved["secretKey"]
    except (OSError, ValueError, KeyError):
        creds = {"apiKey": "demo_" + secrets.token_urlsafe(16), "secretKey": generate_secret()}
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds))
        path.chmod(0o600)
        return creds["apiKey"], creds["secretKey"]


def setup_demo(store: PartnerStore, data_dir: Path, out: Any) -> tuple[DemoReceiver, str]:
    api_key, secret = demo_credentials(data_dir)
    receiver = DemoReceiver(secret, out)
    receiver.start()
    store.upsert_by_name(DEMO_NAME, receiver.url, DEMO_EVENTS, api_key=api_key, secret_key=secret)
    return receiver, api_key


def curl_command(api_url: str, api_key: str) -> str:
    return (
        f"curl -sS -X POST {api_url}/api/v1/events -H 'Content-Type: application/json' "
        f"-H {shlex.quote('X-API-Key: ' + api_key)} -d {shlex.quote(json.dumps(SAMPLE_EVENTS))}"
    )
