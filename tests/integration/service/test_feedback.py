"""/feedback: tokens, service keys, scores landing in the backend's store, bad input."""

from __future__ import annotations

import httpx
import pytest

from app.feedback import FeedbackTokens, request_subject
from tests.integration.service.conftest import SERVICE_KEY, Service


def _answer(service: Service) -> dict:
    response = httpx.post(f"{service.url}/example/invoke", json={"input": {"product": "pens"}})
    assert response.status_code == 200, response.text
    return response.json()["metadata"]


def test_score_with_token_lands_in_the_store_with_its_name(service: Service) -> None:
    metadata = _answer(service)
    request_id = metadata["promptlayer_request_id"]
    response = httpx.post(
        f"{service.url}/feedback",
        json={
            "request_id": request_id,
            "score": 87,
            "name": "helpfulness",
            "comment": "short and sweet",
            "feedback_token": metadata["feedback_token"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "request_id": request_id,
        "name": "helpfulness",
        "score": 87,
        "comment_recorded": True,
    }
    stored = service.stored_request(request_id)
    assert stored["scores"] == {"helpfulness": 87}
    assert stored["metadata"]["feedback_comment:helpfulness"] == "short and sweet"


def test_same_request_and_name_scored_twice_keeps_the_last(service: Service) -> None:
    metadata = _answer(service)
    body = {
        "request_id": metadata["promptlayer_request_id"],
        "feedback_token": metadata["feedback_token"],
    }
    for score in (10, 95):
        assert (
            httpx.post(f"{service.url}/feedback", json={**body, "score": score}).status_code == 200
        )
    stored = service.stored_request(metadata["promptlayer_request_id"])
    assert stored["scores"] == {"default": 95}


def test_service_key_stands_in_for_a_token(service: Service) -> None:
    request_id = _answer(service)["promptlayer_request_id"]
    response = httpx.post(
        f"{service.url}/feedback",
        json={"request_id": request_id, "score": 5},
        headers={"Authorization": f"Bearer {SERVICE_KEY}"},
    )
    assert response.status_code == 200, response.text
    assert service.stored_request(request_id)["scores"] == {"default": 5}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"feedback_token": None}, 401),
        ({"feedback_token": "garbage"}, 403),
        ({"feedback_token": "9999999999.AAAA"}, 403),
    ],
)
def test_missing_or_forged_tokens_are_refused(service: Service, change: dict, status: int) -> None:
    request_id = _answer(service)["promptlayer_request_id"]
    body = {"request_id": request_id, "score": 50, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = httpx.post(f"{service.url}/feedback", json=body)
    assert response.status_code == status
    assert "feedback_token" in response.json()["detail"]
    assert service.stored_request(request_id)["scores"] == {}


def test_a_token_cannot_be_moved_to_another_request(service: Service) -> None:
    first, second = _answer(service), _answer(service)
    response = httpx.post(
        f"{service.url}/feedback",
        json={
            "request_id": second["promptlayer_request_id"],
            "score": 50,
            "feedback_token": first["feedback_token"],
        },
    )
    assert response.status_code == 403


def test_an_expired_token_is_refused(service: Service) -> None:
    request_id = _answer(service)["promptlayer_request_id"]
    secret = (service.settings.data_dir / "feedback_secret").read_text().strip().encode()
    tokens = FeedbackTokens(secret=secret, ttl_seconds=60)
    expired = tokens.issue(request_subject(request_id), now=0)
    response = httpx.post(
        f"{service.url}/feedback",
        json={"request_id": request_id, "score": 50, "feedback_token": expired},
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_unknown_request_id_is_404(service: Service) -> None:
    response = httpx.post(
        f"{service.url}/feedback",
        json={"request_id": 987654321, "score": 50},
        headers={"X-API-Key": SERVICE_KEY},
    )
    assert response.status_code == 404
    assert "987654321" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"request_id": 1, "score": 101},
        {"request_id": 1, "score": -1},
        {"request_id": 1, "score": 50.5},
        {"request_id": 1, "score": "50"},
        {"request_id": "one", "score": 50},
        {"score": 50},
        {"request_id": 1, "score": 50, "name": ""},
    ],
)
def test_bad_feedback_is_a_4xx_naming_the_field(service: Service, body: dict) -> None:
    response = httpx.post(f"{service.url}/feedback", json=body, headers={"X-API-Key": SERVICE_KEY})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] in {"score", "request_id", "name"}


def test_malformed_json_is_a_4xx(service: Service) -> None:
    response = httpx.post(
        f"{service.url}/feedback",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
