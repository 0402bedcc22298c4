"""Issuing and verifying access and refresh tokens."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
import pytest

from signal_admin.errors import ExpiredToken, InvalidRefreshToken, InvalidToken
from signal_admin.security import tokens
from signal_admin.security.tokens import TokenService, digest, random_base62

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def _service(*, access_ttl: int = 900, refresh_ttl: int = 604_800) -> TokenService:
    return TokenService(
        SECRET, access_ttl=access_ttl, refresh_ttl=refresh_ttl, leeway=5
    )


def _issue_access(service: TokenService) -> str:
    return service.issue_access(
        user_id="usr_1", org_id="org_1", session_id="ses_1", role="editor"
    ).token


def _issue_refresh(service: TokenService) -> str:
    return service.issue_refresh(
        user_id="usr_1", org_id="org_1", session_id="ses_1"
    ).token


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens PyJWT decodes from now on, in order."""
    decoded: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counted)
    return decoded


class TestVerifyAccess:
    def test_answers_the_claims_of_an_access_token(self) -> None:
        service = _service()

        claims = service.verify_access(_issue_access(service))

        assert (claims.type, claims.user_id, claims.org_id, claims.session_id) == (
            "access",
            "usr_1",
            "org_1",
            "ses_1",
        )
        assert claims.expires_at - claims.issued_at == 900

    def test_refuses_a_refresh_token(self) -> None:
        service = _service()

        with pytest.raises(InvalidToken):
            service.verify_access(_issue_refresh(service))

    def test_refuses_an_expired_token_as_expired(self) -> None:
        service = _service(access_ttl=-60)

        with pytest.raises(ExpiredToken):
            service.verify_access(_issue_access(service))

    def test_accepts_a_token_expired_within_the_leeway(self) -> None:
        service = _service(access_ttl=-2)

        claims = service.verify_access(_issue_access(service))

        assert claims.user_id == "usr_1"

    def test_refuses_a_token_of_another_key(self) -> None:
        other = TokenService(
            "another-secret-that-is-long-enough-9876543210",
            access_ttl=900,
            refresh_ttl=900,
            leeway=5,
        )

        with pytest.raises(InvalidToken):
            _service().verify_access(_issue_access(other))

    def test_refuses_alg_none(self) -> None:
        claims = jwt.decode(
            _issue_access(_service()), options={"verify_signature": False}
        )
        unsigned = jwt.encode(claims, "", algorithm="none")

        with pytest.raises(InvalidToken):
            _service().verify_access(unsigned)

    def test_refuses_a_token_without_an_org(self) -> None:
        claims = jwt.decode(
            _issue_access(_service()), options={"verify_signature": False}
        )
        del claims["org_id"]

        with pytest.raises(InvalidToken):
            _service().verify_access(jwt.encode(claims, SECRET, algorithm="HS256"))


class TestRememberedAccessTokens:
    def test_answers_the_same_claims_again(self) -> None:
        service = _service()
        token = _issue_access(service)

        first = service.verify_access(token)
        again = service.verify_access(token)

        assert again == first

    def test_refuses_a_remembered_token_once_it_expires(self) -> None:
        now = [time.time()]
        service = TokenService(
            SECRET, access_ttl=900, refresh_ttl=900, leeway=5, clock=lambda: now[0]
        )
        token = _issue_access(service)
        service.verify_access(token)
        now[0] += 900 + 5

        with pytest.raises(ExpiredToken):
            service.verify_access(token)

    def test_keeps_a_remembered_token_within_the_leeway(self) -> None:
        now = [time.time()]
        service = TokenService(
            SECRET, access_ttl=900, refresh_ttl=900, leeway=5, clock=lambda: now[0]
        )
        token = _issue_access(service)
        service.verify_access(token)
        now[0] += 900 + 3

        assert service.verify_access(token).user_id == "usr_1"

    def test_refuses_a_remembered_token_with_another_signature(self) -> None:
        service = _service()
        token = _issue_access(service)
        service.verify_access(token)
        header, payload, signature = token.split(".")
        altered = "A" if signature[0] != "A" else "B"

        with pytest.raises(InvalidToken):
            service.verify_access(f"{header}.{payload}.{altered}{signature[1:]}")

    def test_verifies_again_the_oldest_of_more_tokens_than_it_keeps(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tokens, "VERIFIED_TOKENS_KEPT", 2)
        service = _service()
        oldest, *others = [_issue_access(service) for _ in range(3)]
        for token in (oldest, *others):
            service.verify_access(token)
        decoded = _count_decodes(monkeypatch)

        service.verify_access(others[-1])
        service.verify_access(oldest)

        assert decoded == [oldest]

    def test_does_not_remember_refresh_tokens(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        service = _service()
        token = _issue_refresh(service)
        service.verify_refresh(token)
        decoded = _count_decodes(monkeypatch)

        service.verify_refresh(token)

        assert decoded == [token]


class TestVerifyRefresh:
    def test_answers_the_claims_of_a_refresh_token(self) -> None:
        service = _service()

        claims = service.verify_refresh(_issue_refresh(service))

        assert claims.type == "refresh"
        assert claims.expires_at - claims.issued_at == 604_800

    def test_refuses_an_access_token(self) -> None:
        service = _service()

        with pytest.raises(InvalidRefreshToken):
            service.verify_refresh(_issue_access(service))

    def test_refuses_an_expired_token_as_invalid(self) -> None:
        service = _service(refresh_ttl=-60)

        with pytest.raises(InvalidRefreshToken):
            service.verify_refresh(_issue_refresh(service))


class TestIssue:
    def test_gives_every_token_its_own_jti(self) -> None:
        service = _service()

        first = service.issue_refresh(user_id="u", org_id="o", session_id="s")
        second = service.issue_refresh(user_id="u", org_id="o", session_id="s")

        assert first.jti != second.jti
        assert first.token != second.token


class TestDigest:
    def test_is_the_sha256_hex_of_the_value(self) -> None:
        assert digest("abc") == (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )


class TestRandomBase62:
    def test_has_the_length_asked_for_in_base62(self) -> None:
        value = random_base62(40)

        assert re.fullmatch(r"[0-9A-Za-z]{40}", value)

    def test_differs_between_calls(self) -> None:
        assert random_base62(32) != random_base62(32)
