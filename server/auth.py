"""Who is asking: HS256 tokens when a secret is set, open development mode when not."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from pydantic import TypeAdapter, ValidationError
from tidings.errors import Unauthorized
from tidings.models import JobId, UserId

_user_id: TypeAdapter[str] = TypeAdapter(UserId)

#: A token minted for the jobs a request created: those jobs, nothing of their owner's else.
JOB_SCOPE = "job"
JOB_TOKEN_TTL = 86_400
_job_ids: TypeAdapter[list[str]] = TypeAdapter(list[JobId])


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller. ``jobs`` lists the jobs a token names; ``open`` lets anyone watch anything."""

    user: str | None
    jobs: frozenset[str] = frozenset()
    expires_at: float | None = None
    open: bool = False

    def may_watch(self, job_id: str, owner: str | None) -> bool:
        if self.open or job_id in self.jobs:
            return True
        return owner is not None and owner == self.user


class Authority:
    """Mints and checks tokens; without a secret every caller is an open-mode principal."""

    def __init__(self, secret: str | None, api_key: str | None = None) -> None:
        self._secret = secret
        self._api_key = api_key

    @property
    def open(self) -> bool:
        return self._secret is None

    def mint(self, user: str, jobs: Iterable[str] = (), ttl: float = 3600) -> str:
        if self._secret is None:
            raise Unauthorized("No secret is configured, so no token can be minted.")
        claims: dict[str, object] = {"sub": user, "exp": int(time.time() + ttl)}
        job_list = list(jobs)
        if job_list:
            claims["jobs"] = job_list
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def mint_job_token(
        self, owner: str | None, jobs: Iterable[str], caller: Principal | None = None
    ) -> str:
        """A token for these jobs only: it names no user, so it opens neither the owner's other
        jobs nor the user room, and it lives no longer than the token of whoever asked for it."""
        if self._secret is None:
            raise Unauthorized("No secret is configured, so no token can be minted.")
        expires = time.time() + JOB_TOKEN_TTL
        if caller is not None and caller.expires_at is not None:
            expires = min(expires, caller.expires_at)
        claims = {
            "sub": owner or "anonymous",
            "exp": int(expires),
            "jobs": list(jobs),
            "scope": JOB_SCOPE,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def principal(self, token: object = None, user_id: object = None) -> Principal:
        """The caller behind a token (required with a secret) or, in open mode, a user id."""
        if self._secret is None:
            return Principal(user=_valid_user(user_id), open=True)
        if not isinstance(token, str) or not token:
            raise Unauthorized("unauthorized")
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
            )
            _strict_claims(claims)
            user = _user_id.validate_python(claims["sub"])
            return Principal(
                user=None if claims.get("scope") == JOB_SCOPE else user,
                jobs=frozenset(_job_ids.validate_python(claims.get("jobs", []))),
                expires_at=float(claims["exp"]),
            )
        except (jwt.PyJWTError, ValidationError, TypeError, ValueError) as exc:
            raise Unauthorized("unauthorized") from exc

    def is_api_key(self, presented: str | None) -> bool:
        return (
            self._api_key is not None
            and presented is not None
            and hmac.compare_digest(presented.encode(), self._api_key.encode())
        )

    def check_api_key(self, presented: str | None) -> None:
        """Workers' key for the emit endpoint; with neither key nor secret the server is open."""
        if self._api_key is None and self._secret is None:
            return
        if self._api_key is None:
            raise Unauthorized("This server has no API key configured for emitting progress.")
        if not self.is_api_key(presented):
            raise Unauthorized("A valid API key is required to emit progress.")


#: Times in a token: NumericDate, a JSON number (RFC 7519 2); PyJWT would take "1999999999" too.
_TIME_CLAIMS = ("exp", "iat", "nbf")


def _strict_claims(claims: dict[str, object]) -> None:
    """``ValueError`` for a claim of the wrong JSON type, which PyJWT coerces or ignores."""
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"the {name} claim must be a number")
    if not isinstance(claims["sub"], str):
        raise ValueError("the sub claim must be a string")
    if "jobs" in claims and not isinstance(claims["jobs"], list):
        raise ValueError("the jobs claim must be a list")
    if claims.get("scope", JOB_SCOPE) != JOB_SCOPE:
        raise ValueError("unknown scope")


def _valid_user(user_id: object) -> str | None:
    if user_id is None:
        return None
    try:
        return _user_id.validate_python(user_id)
    except ValidationError as exc:
        raise Unauthorized("unauthorized") from exc
