"""The local MongoDB-protocol server as `webhooks local` launches it (SecantusDB with its
index options read once per insert chunk instead of once per document): indexes made or
dropped between inserts still apply to the next insert, unique ones included; a stop is
prompt.

These start their own server: they are about our launch of it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import ASCENDING, MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

from webhooks_cli.servers import start_mongo


@pytest.fixture(scope="module")
def db() -> Iterator[Any]:
    server = start_mongo()
    client: MongoClient[Any] = MongoClient(server.url)
    try:
        yield client["launch"]
    finally:
        client.close()
        server.stop()


def test_a_unique_index_rejects_the_duplicate_inside_one_batch(db: Any) -> None:
    db.keys.create_index([("key", ASCENDING)], unique=True)
    with pytest.raises(BulkWriteError) as caught:
        db.keys.insert_many([{"key": n % 5} for n in range(10)], ordered=False)
    assert caught.value.details["nInserted"] == 5
    assert {e["code"] for e in caught.value.details["writeErrors"]} == {11000}


def test_an_index_made_between_inserts_applies_to_the_next_one(db: Any) -> None:
    db.later.insert_many([{"key": n} for n in range(10)])
    db.later.create_index([("key", ASCENDING)], unique=True)
    with pytest.raises(DuplicateKeyError):
        db.later.insert_one({"key": 3})
    db.later.drop_index("key_1")
    db.later.insert_one({"key": 3})  # dropped: no longer unique
    assert db.later.count_documents({"key": 3}) == 2


def test_partial_and_sparse_options_are_honoured_per_document(db: Any) -> None:
    db.opts.create_index(
        [("email", ASCENDING)], unique=True, partialFilterExpression={"active": True}, name="active_email"
    )
    docs = [
        {"email": "a@x", "active": False},
        {"email": "a@x", "active": False},
        {"email": "a@x", "active": True},
    ]
    db.opts.insert_many(docs)  # the inactive ones are outside the partial index
    with pytest.raises(BulkWriteError):
        db.opts.insert_many([{"email": "a@x", "active": True}])
    assert db.opts.count_documents({}) == 3
    assert db.opts.find_one({"email": "a@x", "active": True}, hint="active_email") is not None


def test_the_launch_is_a_standalone_server_without_an_oplog(db: Any) -> None:
    """Standalone, as a plain mongod: no oplog entry per written document (nothing here
    reads change streams), so writes cost what the data and its indexes cost."""
    client = db.client
    servers = list(client.topology_description.server_descriptions().values())
    assert [s.server_type_name for s in servers] == ["Standalone"]
    db.standalone.insert_one({"n": 1})
    assert "oplog.rs" not in client["local"].list_collection_names()


PROMPT_STOP = r"""
import threading
from secantus.server import SecantusDBServer
from webhooks_cli import secantus_server  # noqa: F401  the launch's patches
from webhooks_cli.servers import free_port

server = SecantusDBServer(host="127.0.0.1", port=free_port(), storage_path=":memory:")
server.start()
accepting = server._thread
assert accepting is not None and accepting.is_alive()
server.stop()
print("accept thread alive after stop:", accepting.is_alive())
"""


def test_a_stop_wakes_the_accept_thread_instead_of_waiting_it_out() -> None:
    """SecantusDB closes its listening socket and joins the accept thread for up to 2 s; a
    close does not wake accept() on Linux, so the join always ran out and every stop of
    `webhooks local` took 2 s more. The launch shuts the socket down first. In a process of
    its own: the launch patches SecantusDB's classes."""
    done = subprocess.run([sys.executable, "-c", PROMPT_STOP], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "accept thread alive after stop: False"
