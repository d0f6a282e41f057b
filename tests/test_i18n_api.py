"""The JSON API's top-level error messages in the caller's language (Accept-Language).

The ``code`` is what a program reads and stays the same; the ``message`` is for a person.
"""

from __future__ import annotations

from typing import Any

import pytest

from .test_limits import api_ticket, limited_app

WORDS = {"en": "An agent API token is required.", "id": "Diperlukan token API agen.",
         "fil": "Kailangan ng API token ng agent."}


def _message(response: Any) -> tuple[str, str]:
    error = response.get_json()["error"]
    return error["code"], error["message"]


@pytest.fixture
def api(make_app: Any) -> Any:
    return limited_app(make_app, rate_limit_api="3/minute")


@pytest.mark.parametrize("header, language", [
    ("id-ID,id;q=0.9", "id"), ("fil", "fil"), ("tl-PH", "fil"), ("en-GB", "en"), ("", "en")])
def test_a_401_speaks_the_callers_language(api: Any, header: str, language: str) -> None:
    response = api.test_client().get("/api/v1/tickets", headers={"Accept-Language": header})
    assert response.status_code == 401
    assert _message(response) == ("unauthorized", WORDS[language])


def test_a_422_a_400_and_a_404_are_translated_with_their_field_errors(api: Any) -> None:
    client = api.test_client()
    indonesian = {"Accept-Language": "id"}
    invalid = client.post("/api/v1/tickets", json=api_ticket(email="not-an-address"),
                          headers=indonesian)
    assert invalid.status_code == 422
    assert _message(invalid) == ("invalid", "Beberapa kolom tidak valid.")
    not_json = client.post("/api/v1/tickets", data="{", content_type="application/json",
                           headers={"Accept-Language": "fil"})
    assert _message(not_json) == ("invalid_json", "Hindi valid na JSON ang laman ng request.")
    missing = client.get("/api/v1/tickets/999", headers={**indonesian, "X-Ticket-Key": "x" * 20})
    assert _message(missing) == ("not_found",
                                 "Tiket tidak ditemukan, atau Anda tidak berhak melihatnya.")


def test_a_413_is_translated_with_its_numbers(api: Any) -> None:
    response = api.test_client().patch(
        "/api/v1/tickets/1", json={"status": "open", "note": "x" * (100 * 1024)},
        headers={"Authorization": "Bearer whatever", "Accept-Language": "id"})
    code, message = _message(response)
    assert response.status_code == 413 and code == "too_large"
    assert message.startswith("Permintaan terlalu besar: paling banyak ") and " byte " in message


def test_a_429_is_translated_and_keeps_retry_after(api: Any) -> None:
    client = api.test_client()
    for _ in range(3):
        client.get("/api/v1/user-types")
    refused = client.get("/api/v1/user-types", headers={"Accept-Language": "fil"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert _message(refused) == ("too_many_requests", "Masyadong maraming request. Subukan "
                                 "ulit pagkalipas ng bilang ng segundo sa Retry-After.")
