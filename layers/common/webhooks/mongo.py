"""One MongoClient per process, created on first use (a Lambda reuses it across invocations)."""

from __future__ import annotations

import threading
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from .config import ConfigError, Settings

_clients: dict[str, MongoClient[Any]] = {}
_lock = threading.Lock()


def get_database(settings: Settings) -> Database[Any]:
    if not settings.mongo_uri:
        raise ConfigError("Missing required configuration: MONGO_URI")
    with _lock:
        client = _clients.get(settings.mongo_uri)
        if client is None:
            # Small pool and short timeouts: a Lambda serves one request at a time and
            # should fail fast (and be retried by SQS) rather than hang when the database is away.
            client = MongoClient(
                settings.mongo_uri,
                maxPoolSize=max(4, settings.worker_concurrency * 2),
                serverSelectionTimeoutMS=3000,
                connectTimeoutMS=3000,
                socketTimeoutMS=10000,
                retryWrites=True,
                tz_aware=True,
            )
            _clients[settings.mongo_uri] = client
    return client[settings.mongo_db_name]


def close_all() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
