"""Gateway callers with JWTs: verified against a JWKS URL or a shared secret, mapped to an identity."""

from __future__ import annotations

import asyncio
from typing import Any

from app.config.governance import GatewayJwt
from app.gateway.tokens import Identities, Identity


class JwtRejected(Exception):
    """The token is not acceptable; the message says why (it goes back in WWW-Authenticate)."""


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts: gateway tokens never contain a dot."""
    return token.count(".") == 2


class JwtVerifier:
    """Checks signature, issuer, audience, expiry and not-before; caches JWKS keys."""

    def __init__(self, config: GatewayJwt) -> None:
        import jwt

        self.config = config
        self._jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=300) if config.jwks_url else None

    def _claims(self, token: str) -> dict[str, Any]:
        import jwt

        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
            else:
                key, algorithms = self.config.secret, ["HS256", "HS384", "HS512"]
            return dict(
                jwt.decode(
                    token, key, algorithms=algorithms, audience=self.config.audience, issuer=self.config.issuer,
                    leeway=self.config.leeway, options={"require": ["exp", "iss", "aud"]},
                )
            )  # fmt: skip
        except jwt.PyJWKClientError as exc:
            raise JwtRejected(f"cannot get the signing key: {exc}") from None
        except jwt.PyJWTError as exc:
            raise JwtRejected(str(exc) or type(exc).__name__) from None

    async def identity(self, token: str, identities: Identities) -> Identity:
        """The caller a valid token stands for (JwtRejected otherwise)."""
        claims = await asyncio.to_thread(self._claims, token)  # a JWKS fetch must not stall the loop
        name = claims.get(self.config.identity_claim)
        if not isinstance(name, str) or not name:
            raise JwtRejected(f"the token has no '{self.config.identity_claim}' claim")
        known = identities.named(name)
        if known is not None:  # its profiles, globs and rates from the config
            return known
        profiles = self.config.default_profiles
        if self.config.profiles_claim is not None and isinstance(claims.get(self.config.profiles_claim), list):
            profiles = [str(p) for p in claims[self.config.profiles_claim]]
        return Identity(name, tuple(profiles))
