"""MONGO_URI from an SSM SecureString (moto's in-process mock: a unit test of one function)."""

import boto3
import pytest
from moto import mock_aws

from webhooks.config import ConfigError, load_settings
from webhooks.store.mongo import mongo_uri


@mock_aws
def test_the_uri_is_read_from_a_secure_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGO_URI", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/webhooks/mongo-uri", Value="mongodb+srv://user:pw@cluster.example/", Type="SecureString"
    )
    settings = load_settings(mongo_uri_parameter="/webhooks/mongo-uri")
    assert mongo_uri(settings) == "mongodb+srv://user:pw@cluster.example/"


def test_mongo_uri_wins_and_missing_both_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGO_URI", raising=False)
    assert mongo_uri(load_settings(mongo_uri="mongodb://a", mongo_uri_parameter="/x")) == "mongodb://a"
    with pytest.raises(ConfigError, match="MONGO_URI"):
        mongo_uri(load_settings(mongo_uri_parameter=None))
