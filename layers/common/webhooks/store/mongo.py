"""One MongoClient per process, created on first use (a Lambda reuses it across invocations)."""

from __future__ import annotations

import threading
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from ..config import ConfigError, Settings

_clients: dict[str, MongoClient[Any]] = {}
_lock = threading.Lock()


def mongo_uri(settings: Settings) -> str:
    """MONGO_URI, or the SSM SecureString that MONGO_URI_PARAMETER names (Powertools Parameters)."""
    if settings.mongo_uri:
        return settings.mongo_uri
    if settings.mongo_uri_parameter:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_parameter(settings.mongo_uri_parameter, decrypt=True, max_age=300)
        if value:
            return str(value)
    raise ConfigError("Missing required configuration: MONGO_URI (or MONGO_URI_PARAMETER)")


def get_database(settings: Settings) -> Database[Any]:
    uri = mongo_uri(settings)
    with _lock:
        client = _clients.get(uri)
        if client is None:
            # Small pool and short timeouts: a Lambda serves one request at a time and
            # should fail fast (and be retried by SQS) rather than hang when the database is away.
            # Idle connections are closed before Atlas or a NAT gateway drops them (350 s
            # idle) while an instance is frozen between invocations.
            client = MongoClient(
                uri,
                maxPoolSize=settings.mongo_max_pool_size or max(4, settings.worker_concurrency * 2),
                maxIdleTimeMS=240_000,
                serverSelectionTimeoutMS=3000,
                connectTimeoutMS=3000,
                socketTimeoutMS=10000,
                retryWrites=True,
                tz_aware=True,
            )
            _clients[uri] = client
    return client[settings.mongo_db_name]


def close_all() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
