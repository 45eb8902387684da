"""The TMDB credential: from the environment, or read from AWS Secrets Manager.

`load_credentials()` is what the entry points call, before they set up logging (which must know the
secret to redact it): TMDB_ACCESS_TOKEN / TMDB_API_KEY when either is set, otherwise the secret that
TMDB_SECRET_ARN names (an ARN, or a name in the default region). The secret is read once per process
and kept, so a warm Lambda reads it only at its cold start; `forget()` drops it, for when TMDB has
rejected it (a rotated token is then read again by the next invocation).

The secret's SecretString is either the read access token as plain text, or a JSON object with a
"TMDB_ACCESS_TOKEN" and/or "TMDB_API_KEY" string. Its value never appears in a message: errors name
the secret's ARN only.

    missing, denied, undecryptable, malformed -> CredentialError (exit 3): a person must fix it
    Secrets Manager unreachable or failing     -> SecretUnavailable (exit 4, like S3 unavailable):
                                                  a retry fixes an outage; a network set-up that
                                                  cannot reach it (a VPC without a route) needs a person
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

import orjson

from . import aws
from .config import Credentials, Secret
from .errors import CredentialError, SecretUnavailable

SECRET_ENV = "TMDB_SECRET_ARN"
JSON_KEYS = ("TMDB_ACCESS_TOKEN", "TMDB_API_KEY")

_read: dict[str, Credentials] = {}  # secret id -> its credential, for the life of the process


def load_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    """The environment's credential, else the one in the secret TMDB_SECRET_ARN names (read at the first
    call only). Runs its own event loop for the read: call it outside one, as the entry points do."""
    env = os.environ if environ is None else environ
    credentials = Credentials.from_env(env)
    secret_id = env.get(SECRET_ENV, "").strip()
    if credentials.present or not secret_id:
        return credentials
    if secret_id not in _read:
        _read[secret_id] = asyncio.run(read_credentials(secret_id))
    return _read[secret_id]


def forget() -> None:
    """Read the secret again next time (TMDB rejected what it held: it may have been rotated)."""
    _read.clear()


async def read_credentials(secret_id: str) -> Credentials:
    """GetSecretValue on `secret_id`, its errors translated once, here."""
    region = region_of(secret_id)
    try:
        async with aws.secrets_client(region) as client:
            answer = await client.get_secret_value(SecretId=secret_id)
    except aws.ERRORS as exc:
        where = f"AWS Secrets Manager in {region}" if region else "AWS Secrets Manager"
        reason = aws.describe(exc, where, service="Secrets Manager")
        if aws.is_transient(exc):
            raise SecretUnavailable(
                f"cannot read the TMDB secret {secret_id} for now: {reason}; try again later"
            ) from None
        raise CredentialError(f"cannot read the TMDB secret {secret_id}: {reason}") from None
    value = answer.get("SecretString")
    if isinstance(value, str):
        return parse_secret(secret_id, value)
    if "SecretBinary" in answer:
        raise CredentialError(
            f"the TMDB secret {secret_id} holds binary data; store the token as its SecretString"
        )
    # botocore reads an unparsable 200 answer as {"message": <body>}: a broken connection or proxy
    raise SecretUnavailable(f"Secrets Manager gave no value for the TMDB secret {secret_id}; try again later")


def parse_secret(secret_id: str, value: str) -> Credentials:
    """The credential a SecretString holds: a plain token, or a JSON object with JSON_KEYS."""
    text = value.strip()
    if not text.startswith("{"):  # a TMDB token is a JWT ("eyJ..."): never JSON
        if not text:
            raise CredentialError(f"the TMDB secret {secret_id} is empty")
        return Credentials(access_token=Secret(text))
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise CredentialError(f"the TMDB secret {secret_id} starts with '{{' but is not JSON") from None
    found = [doc.get(key) if isinstance(doc, dict) else None for key in JSON_KEYS]
    token, key = (v.strip() if isinstance(v, str) else "" for v in found)
    if not token and not key:
        raise CredentialError(
            f"the TMDB secret {secret_id} is a JSON document without a {' or '.join(JSON_KEYS)} string"
        )
    return Credentials(Secret(token) if token else None, Secret(key) if key else None)


def region_of(secret_id: str) -> str | None:
    """The region in a secret's ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME); None for a name,
    which botocore's chain places (AWS_REGION on Lambda)."""
    parts = secret_id.split(":", 6)
    if len(parts) == 7 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[3]:
        return parts[3]
    return None
