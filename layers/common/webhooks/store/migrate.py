"""Bring a database written by the Node service up to this data model (``webhooks migrate``).

The Node service kept each partner's API key in plain text (``partners.apiKey``); this
service looks keys up by their SHA-256 (``apiKeyHash``) and never stores the key. The
migration, idempotent and resumable (each partner is one conditional update, so a run
that stops half-way is finished by the next):
- hashes every plain ``apiKey`` into ``apiKeyHash`` and removes it, marking the partner
  ``apiKeyLegacy: true`` (a key of any strength, chosen by hand: rotate it; the rotation
  clears the mark) and listing every partner still so marked under ``legacyApiKeys``;
- creates the indexes this service relies on;
- checks that every partner and subscription can be read: every field this service reads
  must have its type (a string ``createdAt``, ``previousSecrets: "x"`` or a list of
  ``headers`` is read as absent, and the partner is left out of the admin list), and lists
  what it cannot take under ``problems`` (nothing is deleted: an operator decides);
- gives every partner its first endpoint without writing anything: the partner document is
  that endpoint (same URL, secret, headers, subscriptions, so the same signatures), listed
  under ``firstEndpoints``; other endpoints (``endpoints``) and their subscriptions are
  checked like partners, an endpoint or subscription whose owner is gone listed as a problem;
- reports the partners whose producers may authenticate with the signing secret: the Node
  code looked partners up by ``secretKey == X-API-Key`` (its bcrypt check of ``apiKey``
  was never awaited, so it passed), so its producers sent the secret. Here a secret is
  never an API key: those producers must switch to the partner's API key, the ``apiKey``
  string as stored (the Node seed stores bcrypt-looking strings there; they are taken
  as the key itself, listed under ``bcryptLookingKeys``), or be issued a new one.

Legacy secrets (not ``whsec_``) keep working unchanged: ``X-Recart-Signature-256`` is the
HMAC keyed with the secret string, as before, and the Standard Webhooks signature is keyed
with the secret's UTF-8 bytes until the partner's secret is rotated to a ``whsec_`` one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bson import ObjectId
from pydantic import TypeAdapter, ValidationError
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..delivery.signing import SECRET_PREFIX, hash_api_key
from ..endpoints.model import endpoint_problems, first_endpoint_id
from ..models import SubscriptionPattern
from ..partners.model import document_problems
from .indexes import ensure_indexes

_pattern: TypeAdapter[str] = TypeAdapter(SubscriptionPattern)


@dataclass
class MigrationReport:
    dry_run: bool
    partners: int = 0
    subscriptions: int = 0
    hashed_api_keys: list[str] = field(default_factory=list)  # partner ids
    already_migrated: int = 0
    indexes: list[str] = field(default_factory=list)
    legacy_secrets: list[str] = field(default_factory=list)  # partner ids whose secret is not whsec_
    secret_may_be_used_as_api_key: list[str] = field(default_factory=list)
    bcrypt_looking_keys: list[str] = field(default_factory=list)
    legacy_api_keys: list[str] = field(default_factory=list)  # apiKeyLegacy: rotate these keys
    first_endpoints: list[str] = field(default_factory=list)  # the partner documents' own, by id
    endpoints: int = 0  # documents in `endpoints` (a partner's further endpoints)
    problems: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        return {
            "dryRun": body.pop("dry_run"),
            "partners": body.pop("partners"),
            "subscriptions": body.pop("subscriptions"),
            "hashedApiKeys": body.pop("hashed_api_keys"),
            "alreadyMigrated": body.pop("already_migrated"),
            "indexes": body.pop("indexes"),
            "legacySecrets": body.pop("legacy_secrets"),
            "secretMayBeUsedAsApiKey": body.pop("secret_may_be_used_as_api_key"),
            "bcryptLookingKeys": body.pop("bcrypt_looking_keys"),
            "legacyApiKeys": body.pop("legacy_api_keys"),
            "firstEndpoints": body.pop("first_endpoints"),
            "endpoints": body.pop("endpoints"),
            "problems": body.pop("problems"),
        }


def migrate(
    db: Database[Any], *, dry_run: bool = False, delivery_log_ttl_days: float = 30
) -> MigrationReport:
    report = MigrationReport(dry_run=dry_run)
    if not dry_run:
        report.indexes += ensure_indexes(db, delivery_log_ttl_days)
    partner_ids = _partners(db, report)
    endpoint_ids = _endpoints(db, report, partner_ids)
    _subscriptions(db, report, partner_ids, endpoint_ids)
    return report


REQUIRED = ("name", "webhookUrl", "secretKey")


def _partners(db: Database[Any], report: MigrationReport) -> set[Any]:
    ids: set[Any] = set()
    for doc in db["partners"].find({}):
        report.partners += 1
        partner_id = str(doc["_id"])
        ids.add(doc["_id"])
        report.first_endpoints.append(first_endpoint_id(partner_id))
        if not isinstance(doc["_id"], ObjectId):
            report.problems.append({"partnerId": partner_id, "problem": _id_problem(doc["_id"])})
        for name in REQUIRED:
            if not isinstance(doc.get(name), str) or not doc[name]:
                report.problems.append(
                    {"partnerId": partner_id, "problem": f"{name} missing or not a string"}
                )
        for name, problem in document_problems(doc).items():
            if name not in REQUIRED:
                report.problems.append(
                    {"partnerId": partner_id, "problem": f"{problem} (read as absent until fixed)"}
                )
        if doc.get("apiKeyLegacy") is True and doc.get("apiKey") is None:
            report.legacy_api_keys.append(partner_id)  # hashed by an earlier run, not rotated since
        secret = doc.get("secretKey")
        if isinstance(secret, str) and secret and not secret.startswith(SECRET_PREFIX):
            report.legacy_secrets.append(partner_id)
        plain = doc.get("apiKey")
        if plain is None:
            if doc.get("apiKeyHash"):
                report.already_migrated += 1
            else:
                report.problems.append(
                    {"partnerId": partner_id, "problem": "no API key (apiKey or apiKeyHash)"}
                )
            continue
        if not isinstance(plain, str) or not plain:
            report.problems.append({"partnerId": partner_id, "problem": "apiKey is not a non-empty string"})
            continue
        if isinstance(secret, str) and secret:
            report.secret_may_be_used_as_api_key.append(partner_id)
        if plain.startswith(("$2a$", "$2b$", "$2y$")):
            report.bcrypt_looking_keys.append(partner_id)
        if _hash_key(db, doc, plain, report):
            report.hashed_api_keys.append(partner_id)
            report.legacy_api_keys.append(partner_id)
    return ids


def _id_problem(value: Any) -> str:
    if isinstance(value, str):
        return (
            "_id is a string, not an ObjectId: the partner works and the admin API and CLI "
            "address it by that string, but its subscriptions must name it as the same string"
        )
    return f"_id is {type(value).__name__}, not an ObjectId: the admin API and CLI cannot address it"


def _hash_key(db: Database[Any], doc: dict[str, Any], plain: str, report: MigrationReport) -> bool:
    """Hash one partner's key (conditional on the key still being there: resumable); in a
    dry run, only say it would."""
    if report.dry_run:
        return True
    try:
        result = db["partners"].update_one(
            {"_id": doc["_id"], "apiKey": plain},
            {"$set": {"apiKeyHash": hash_api_key(plain), "apiKeyLegacy": True}, "$unset": {"apiKey": ""}},
        )
    except DuplicateKeyError:
        report.problems.append(
            {"partnerId": str(doc["_id"]), "problem": "another partner already holds this API key"}
        )
        return False
    return result.modified_count == 1


def _endpoints(db: Database[Any], report: MigrationReport, partner_ids: set[Any]) -> set[str]:
    """The ids of the further endpoints, each checked for its owner and its fields' types."""
    ids: set[str] = set()
    for doc in db["endpoints"].find({}):
        report.endpoints += 1
        endpoint_id = str(doc["_id"])
        ids.add(endpoint_id)
        if doc.get("partnerId") not in partner_ids:
            report.problems.append({"endpointId": endpoint_id, "problem": "partnerId names no partner"})
        for problem in endpoint_problems(doc).values():
            report.problems.append(
                {"endpointId": endpoint_id, "problem": f"{problem} (read as absent until fixed)"}
            )
    return ids


def _subscriptions(
    db: Database[Any], report: MigrationReport, partner_ids: set[Any], endpoint_ids: set[str]
) -> None:
    for doc in db["subscriptions"].find({}):
        report.subscriptions += 1
        sub_id = str(doc["_id"])
        partner = doc.get("partnerId")
        if not isinstance(partner, ObjectId | str) or partner not in partner_ids:
            report.problems.append({"subscriptionId": sub_id, "problem": "partnerId names no partner"})
        endpoint = doc.get("endpointId")
        if endpoint is not None and endpoint not in endpoint_ids:
            report.problems.append({"subscriptionId": sub_id, "problem": "endpointId names no endpoint"})
        try:
            _pattern.validate_python(doc.get("eventType"))
        except ValidationError:
            report.problems.append(
                {
                    "subscriptionId": sub_id,
                    "problem": f"eventType {doc.get('eventType')!r} is not a valid pattern",
                }
            )
        if not isinstance(doc.get("isActive", True), bool):
            report.problems.append({"subscriptionId": sub_id, "problem": "isActive is not a boolean"})
