"""The admin key's hashes: several at once (a rotation's overlap), from the environment or
from an SSM parameter read at run time and cached (moto's in-process mock: a unit test of
one module; the failure count goes to the session's SecantusDB)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from moto import mock_aws
from pymongo import MongoClient

from webhooks.config import ConfigError, load_settings
from webhooks.errors import Unauthenticated, Unavailable
from webhooks.partners.credentials import ADMIN_HASH_MAX_AGE_SECONDS, AdminCredential

PARAMETER = "/webhooks/admin-key-hash"
OLD, NEW = "old-admin-key", "new-admin-key"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
def db(mongo_client: MongoClient[Any]) -> Iterator[Any]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "ADMIN_API_KEY", "ADMIN_API_KEY_HASH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


class Clock:
    """Powertools' parameter cache reads ``datetime.now()``; this moves it forward."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = timedelta()
        clock = self

        class Shifted(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime.now(tz) + clock.offset

        monkeypatch.setattr(parameters_base, "datetime", Shifted)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def accepts(credential: AdminCredential, key: str) -> bool:
    try:
        credential.check(key, "192.0.2.1")
    except Unauthenticated:
        return False
    return True


def test_a_rotation_in_ssm_is_picked_up_after_the_cache_age_with_both_keys_valid_during_the_overlap(
    ssm: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    ssm.put_parameter(Name=PARAMETER, Value=sha(OLD), Type="SecureString")
    credential = AdminCredential(load_settings(admin_api_key_hash_parameter=PARAMETER), db)
    assert accepts(credential, OLD) and not accepts(credential, NEW)

    ssm.put_parameter(Name=PARAMETER, Value=f"{sha(NEW)}, {sha(OLD)}", Type="SecureString", Overwrite=True)
    assert not accepts(credential, NEW)  # cached: read again only after the cache age
    clock.advance(ADMIN_HASH_MAX_AGE_SECONDS + 1)
    assert accepts(credential, NEW) and accepts(credential, OLD)  # the overlap: both

    ssm.put_parameter(Name=PARAMETER, Value=f"{sha(NEW)}\n", Type="SecureString", Overwrite=True)
    clock.advance(ADMIN_HASH_MAX_AGE_SECONDS + 1)
    assert accepts(credential, NEW) and not accepts(credential, OLD)


@pytest.mark.parametrize("value", ["not-a-hash", f"{sha(NEW)},{OLD}", " , "])
def test_a_malformed_parameter_answers_unavailable_and_logs_the_problem_not_the_value(
    ssm: Any, db: Any, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=value, Type="SecureString")
    credential = AdminCredential(load_settings(admin_api_key_hash_parameter=PARAMETER), db)
    with pytest.raises(Unavailable) as refused:
        credential.check(NEW, "192.0.2.1")
    assert refused.value.message == "The admin API is misconfigured; see the service's logs"
    [logged] = [r for r in caplog.records if r.getMessage() == "admin key hash parameter malformed"]
    assert logged.__dict__["parameter"] == PARAMETER and "SHA-256" in logged.__dict__["problem"]
    shown = value.split(",")[-1].strip(" ,")  # the bad item ("not-a-hash", a plain key)
    assert all(shown not in r.getMessage() + str(r.__dict__) for r in caplog.records if shown)


def test_a_missing_parameter_answers_unavailable(ssm: Any, db: Any) -> None:
    credential = AdminCredential(load_settings(admin_api_key_hash_parameter="/nowhere"), db)
    with pytest.raises(Unavailable, match="retry later"):
        credential.check(NEW, "192.0.2.1")


def test_the_parameter_wins_over_the_hash_in_the_environment(ssm: Any, db: Any) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=sha(NEW), Type="SecureString")
    settings = load_settings(admin_api_key_hash_parameter=PARAMETER, admin_api_key_hash=sha(OLD))
    credential = AdminCredential(settings, db)
    assert accepts(credential, NEW) and not accepts(credential, OLD)


def test_admin_api_key_hash_accepts_several_hashes_separated_by_commas(db: Any) -> None:
    settings = load_settings(admin_api_key_hash=f"{sha(NEW)},{sha(OLD).upper()}", admin_api_key=None)
    credential = AdminCredential(settings, db)
    assert accepts(credential, NEW) and accepts(credential, OLD) and not accepts(credential, "other")


def test_a_bad_admin_api_key_hash_names_the_variable_without_echoing_the_value() -> None:
    with pytest.raises(ConfigError, match="ADMIN_API_KEY_HASH") as failed:
        load_settings(admin_api_key_hash=f"{sha(NEW)},{OLD}")
    assert OLD not in str(failed.value) and sha(NEW) not in str(failed.value)
