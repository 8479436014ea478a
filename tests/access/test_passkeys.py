"""Passkeys end to end through the API with a software authenticator, on SQLite and PostgreSQL: register from
a session, sign in without a password, and every way a forged, replayed or phished response is refused."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from obhut.access.models import PasskeyChallenge
from obhut.container import Container
from tests.access.authenticator import SoftwareAuthenticator
from tests.access.staff import AUTH, add_staff, bearer, enrol_totp, login

PASSKEYS = f"{AUTH}/passkeys"
ADMIN = "admin@example.com"


def register(client: TestClient, token: str, device: SoftwareAuthenticator, label: str = "laptop") -> Any:
    options = client.post(f"{PASSKEYS}/options", headers=bearer(token))
    assert options.status_code == 200, options.text
    body = options.json()
    credential = device.create(body["public_key"])
    return client.post(
        PASSKEYS,
        json={"challenge_id": body["challenge_id"], "credential": credential, "label": label},
        headers=bearer(token),
    )


def sign_in_options(client: TestClient) -> dict[str, Any]:
    response = client.post(f"{PASSKEYS}/sign-in/options")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sign_in(client: TestClient, device: SoftwareAuthenticator) -> Any:
    options = sign_in_options(client)
    assertion = device.get(options["public_key"])
    return client.post(f"{PASSKEYS}/sign-in", json={"challenge_id": options["challenge_id"], "credential": assertion})


def registered(client: TestClient, container: Container, username: str = ADMIN) -> SoftwareAuthenticator:
    add_staff(container, username, "admin")
    device = SoftwareAuthenticator()
    response = register(client, login(client, username)["token"], device)
    assert response.status_code == 201, response.text
    return device


class TestRegistration:
    def test_a_passkey_becomes_the_sessions_second_factor(self, client: TestClient, container: Container) -> None:
        add_staff(container, ADMIN, "admin")
        token = login(client, ADMIN)["token"]
        assert client.get(f"{AUTH}/me", headers=bearer(token)).json()["mfa_required"] is True

        options = client.post(f"{PASSKEYS}/options", headers=bearer(token)).json()["public_key"]
        assert options["rp"]["id"] == "localhost"
        assert options["authenticatorSelection"]["userVerification"] == "required"
        response = register(client, token, SoftwareAuthenticator(), "YubiKey")
        assert response.status_code == 201, response.text
        assert response.json()["label"] == "YubiKey"

        me = client.get(f"{AUTH}/me", headers=bearer(token)).json()
        assert "hwk" in me["amr"]
        assert me["mfa_required"] is False
        listed = client.get(PASSKEYS, headers=bearer(token)).json()
        assert [p["passkey_id"] for p in listed] == [response.json()["passkey_id"]]

    def test_a_key_without_user_verification_or_for_another_site_is_refused(
        self, client: TestClient, container: Container
    ) -> None:
        add_staff(container, ADMIN, "admin")
        token = login(client, ADMIN)["token"]
        no_pin = register(client, token, SoftwareAuthenticator(verify_user=False))
        phished = register(client, token, SoftwareAuthenticator(origin="https://obhut.example.invalid"))
        assert no_pin.status_code == phished.status_code == 401
        assert client.get(PASSKEYS, headers=bearer(token)).json() == []

    def test_a_password_alone_cannot_add_a_factor_to_an_account_that_has_one(
        self, client: TestClient, container: Container
    ) -> None:
        add_staff(container, ADMIN, "admin")
        enrol_totp(client, login(client, ADMIN)["token"])
        password_only = login(client, ADMIN)["token"]
        response = client.post(f"{PASSKEYS}/options", headers=bearer(password_only))
        assert response.status_code == 403
        assert "second factor" in response.json()["detail"]


class TestSignIn:
    def test_opens_a_multi_factor_session_without_a_password(self, client: TestClient, container: Container) -> None:
        device = registered(client, container)
        response = sign_in(client, device)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["amr"] == ["hwk"]
        assert body["mfa_required"] is False
        me = client.get(f"{AUTH}/me", headers=bearer(body["token"])).json()
        assert me["role"] == "admin"
        # An admin may manage staff with it: the session carries the second factor its role needs.
        assert client.get(f"{AUTH.removesuffix('/auth')}/staff", headers=bearer(body["token"])).status_code == 200
        assert client.get(PASSKEYS, headers=bearer(body["token"])).json()[0]["last_used_at"] is not None

    def test_a_challenge_is_used_once(self, client: TestClient, container: Container) -> None:
        device = registered(client, container)
        options = sign_in_options(client)
        request = {"challenge_id": options["challenge_id"], "credential": device.get(options["public_key"])}
        assert client.post(f"{PASSKEYS}/sign-in", json=request).status_code == 200
        replay = client.post(f"{PASSKEYS}/sign-in", json=request)
        assert replay.status_code == 401
        assert "already used" in replay.json()["detail"]

    def test_a_failed_attempt_uses_its_challenge_up_too(self, client: TestClient, container: Container) -> None:
        device = registered(client, container)
        options = sign_in_options(client)
        assertion = device.get(options["public_key"])
        forged = {
            **assertion,
            "response": {**assertion["response"], "signature": assertion["response"]["clientDataJSON"]},
        }
        first = client.post(f"{PASSKEYS}/sign-in", json={"challenge_id": options["challenge_id"], "credential": forged})
        second = client.post(
            f"{PASSKEYS}/sign-in", json={"challenge_id": options["challenge_id"], "credential": assertion}
        )
        assert (first.status_code, second.status_code) == (401, 401)
        with container.sessions() as session:
            assert session.scalar(select(func.count()).select_from(PasskeyChallenge)) == 0

    def test_unknown_keys_phishing_sites_and_missing_verification_answer_alike(
        self, client: TestClient, container: Container
    ) -> None:
        device = registered(client, container)
        stranger = SoftwareAuthenticator()
        phished = SoftwareAuthenticator(origin="https://obhut.example.invalid", key=device.key)
        phished.credential_id, phished.user_handle, phished.counter = device.credential_id, device.user_handle, 10
        device.verify_user = False
        answers = [sign_in(client, d) for d in (stranger, phished, device)]
        assert {a.status_code for a in answers} == {401}
        assert len({a.json()["detail"] for a in answers}) == 1

    def test_a_cloned_key_whose_counter_goes_back_is_refused(self, client: TestClient, container: Container) -> None:
        device = registered(client, container)
        assert sign_in(client, device).status_code == 200
        assert sign_in(client, device).status_code == 200
        device.counter = 0  # the clone signs with the counter it was copied at
        assert sign_in(client, device).status_code == 401

    def test_a_removed_passkey_no_longer_signs_in(self, client: TestClient, container: Container) -> None:
        device = registered(client, container)
        token = sign_in(client, device).json()["token"]
        passkey_id = client.get(PASSKEYS, headers=bearer(token)).json()[0]["passkey_id"]
        assert client.delete(f"{PASSKEYS}/{passkey_id}", headers=bearer(token)).status_code == 204
        assert sign_in(client, device).status_code == 401

    def test_a_registration_challenge_cannot_sign_in(self, client: TestClient, container: Container) -> None:
        device = registered(client, container)
        token = sign_in(client, device).json()["token"]
        options = client.post(f"{PASSKEYS}/options", headers=bearer(token)).json()
        assertion = device.get({"challenge": options["public_key"]["challenge"], "rpId": "localhost"})
        response = client.post(
            f"{PASSKEYS}/sign-in", json={"challenge_id": options["challenge_id"], "credential": assertion}
        )
        assert response.status_code == 401
