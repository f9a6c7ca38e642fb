"""The API simulator over real HTTP: auth like the providers, a deterministic dataset, faults."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import phonenumbers
import pytest
import requests

from etl.extract.sinch_auth import sign_sinch_request
from etl.simulator import (
    SIM_PINGRAM_API_KEY,
    SIM_SINCH_EMAIL,
    SIM_SINCH_INSTANCE_ID,
    SIM_SINCH_INSTANCE_SECRET,
    SIM_SINCH_PASSWORD,
    Fault,
    Simulator,
    changed_count,
    changed_indices,
    parse_fault,
)

NUMBERS_PATH = "/v1/organisations/id/8888123/numbers"
APPLICATION_AUTH = "Application 669762D5-2B10-44E0-8418-BC9EE4457555"
ORGANISATION = {"id": 8888123, "name": "Numbers ETL Simulated Org", "type": "customer"}


def signed_get(
    sim: Simulator,
    path: str = NUMBERS_PATH,
    *,
    instance: tuple[str, str] = (SIM_SINCH_INSTANCE_ID, SIM_SINCH_INSTANCE_SECRET),
    timestamp: str | None = None,
    timeout: float | tuple[float, float] = 10,
) -> requests.Response:
    """GET ``path`` instance-signed as Sinch's client does (Content-Type on a GET too)."""
    ts = timestamp or datetime.now(UTC).isoformat(timespec="milliseconds")
    signature = sign_sinch_request(
        verb="GET",
        body=None,
        content_type="application/json",
        timestamp=ts,
        path=path,
        secret=instance[1],
    )
    headers = {
        "Authorization": f"Instance {instance[0]}:{signature}",
        "x-timestamp": ts,
        "Content-Type": "application/json",
    }
    return requests.get(sim.url + path, headers=headers, timeout=timeout)


def pingram_get(sim: Simulator, key: str = SIM_PINGRAM_API_KEY) -> requests.Response:
    """GET the Pingram listing with a bearer key."""
    return requests.get(
        sim.url + "/numbers/list", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_signed_request_is_accepted(simulator: Simulator) -> None:
    """A correctly instance-signed listing request gets the 40 numbers of the dataset."""
    response = signed_get(simulator)
    assert response.status_code == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert len(response.json()) == 40
    assert simulator.count("sinch.numbers") == 1


def test_bad_signature_is_refused(simulator: Simulator) -> None:
    """A signature made with another secret gets 401 errorCode 40102."""
    response = signed_get(simulator, instance=(SIM_SINCH_INSTANCE_ID, "b3RoZXIgc2VjcmV0"))
    assert response.status_code == 401
    assert response.json() == {"errorCode": 40102, "message": "Invalid signature"}


def test_stale_timestamp_is_refused(simulator: Simulator) -> None:
    """An x-timestamp 20 minutes old gets 401 errorCode 40101."""
    stale = (datetime.now(UTC) - timedelta(minutes=20)).isoformat()
    response = signed_get(simulator, timestamp=stale)
    assert response.status_code == 401
    assert response.json()["errorCode"] == 40101


def test_missing_authorization_is_refused(simulator: Simulator) -> None:
    """No Authorization header gets 401 errorCode 40100."""
    response = requests.get(simulator.url + NUMBERS_PATH, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"errorCode": 40100, "message": "Missing Authorization header"}


def test_wrong_organisation_is_forbidden(simulator: Simulator) -> None:
    """Listing an organisation that is not ours gets 403 errorCode 40300 naming it."""
    response = signed_get(simulator, "/v1/organisations/id/1234/numbers")
    assert response.status_code == 403
    assert response.json() == {
        "errorCode": 40300,
        "message": "The current user is not the owner of the organisation: 1234",
    }


def test_application_scheme_is_refused_on_numbers(simulator: Simulator) -> None:
    """The Application scheme on the listing gets 403 errorCode 40301."""
    response = requests.get(
        simulator.url + NUMBERS_PATH, headers={"Authorization": APPLICATION_AUTH}, timeout=10
    )
    assert response.status_code == 403
    assert response.json() == {
        "errorCode": 40301,
        "message": "The authorization scheme 'instance' is required.",
    }


def login_and_create_instance(sim: Simulator) -> dict[str, Any]:
    """Log in with the simulator's account and create an instance; return the instance."""
    login = requests.post(
        f"{sim.url}/v1/users/email/{SIM_SINCH_EMAIL}/authentication",
        headers={"Authorization": APPLICATION_AUTH, "x-timestamp": datetime.now(UTC).isoformat()},
        json={"password": SIM_SINCH_PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200
    token = login.json()["authorization"]
    created = requests.post(
        f"{sim.url}/v1/instance",
        headers={"Authorization": f"User {token}"},
        json={"authorization": token, "version": {"os": "linux", "platform": "python"}},
        timeout=10,
    )
    assert created.status_code == 200
    instance: dict[str, Any] = created.json()
    return instance


def test_login_and_instance_flow(simulator: Simulator) -> None:
    """Log-in, instance creation, then the organisation and the listing signed by the instance."""
    instance = login_and_create_instance(simulator)
    assert sorted(instance) == ["expiresIn", "id", "secret"]
    assert instance["expiresIn"] == 3600
    creds = (instance["id"], instance["secret"])
    organisation = signed_get(simulator, "/v1/organisations", instance=creds)
    assert organisation.json() == ORGANISATION
    assert signed_get(simulator, instance=creds).status_code == 200
    assert [simulator.count(e) for e in ("sinch.login", "sinch.instance")] == [1, 1]


def test_wrong_password_is_refused(simulator: Simulator) -> None:
    """A wrong password gets 401 and no token."""
    response = requests.post(
        f"{simulator.url}/v1/users/email/{SIM_SINCH_EMAIL}/authentication",
        headers={"Authorization": APPLICATION_AUTH},
        json={"password": "guess"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json() == {"errorCode": 40100, "message": "Invalid email or password"}


def test_expired_instance_is_refused(simulator: Simulator) -> None:
    """An instance past its expiresIn gets 401 errorCode 40100."""
    simulator.faults.instance_ttl = 1
    instance = login_and_create_instance(simulator)
    assert instance["expiresIn"] == 1
    time.sleep(1.1)
    response = signed_get(simulator, instance=(instance["id"], instance["secret"]))
    assert response.status_code == 401
    assert response.json() == {"errorCode": 40100, "message": "Unknown or expired instance"}


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        pytest.param("object", ORGANISATION, id="object"),
        pytest.param("array", [ORGANISATION], id="array"),
        pytest.param("string-id", {**ORGANISATION, "id": "8888123"}, id="string-id"),
    ],
)
def test_organisations_shapes(simulator: Simulator, shape: Any, expected: Any) -> None:
    """The organisations knob switches between an object, an array and a string id."""
    simulator.faults.organisations_shape = shape
    assert signed_get(simulator, "/v1/organisations").json() == expected


def test_pingram_bearer_key_is_accepted(simulator: Simulator) -> None:
    """The right bearer key lists 40 numbers and the shared number."""
    body = pingram_get(simulator).json()
    assert len(body["numbers"]) == 40
    assert body["sharedNumber"].startswith("+1888")


def test_pingram_missing_key_gets_bodyless_401(simulator: Simulator) -> None:
    """No Authorization header gets 401 with an empty body."""
    response = requests.get(simulator.url + "/numbers/list", timeout=10)
    assert (response.status_code, response.content) == (401, b"")


def test_pingram_wrong_key_gets_error_body(simulator: Simulator) -> None:
    """A wrong key gets 401 with Pingram's error body, which does not echo the key."""
    response = pingram_get(simulator, key="pingram_sk_wrong")
    body = response.json()
    assert response.status_code == 401
    assert body["error"] == {
        "code": "unauthorized",
        "message": "Invalid API key",
        "fix": "Use a key from Settings → API keys.",
    }
    assert body["trackingId"].startswith("trk_")
    assert "pingram_sk_wrong" not in response.text


def test_both_pingram_schemas_present(simulator: Simulator) -> None:
    """The listing mixes old-schema and new-schema records, with released numbers."""
    simulator.set_dataset(numbers=400)
    numbers = pingram_get(simulator).json()["numbers"]
    old = [n for n in numbers if "numberType" not in n]
    new = [n for n in numbers if "numberType" in n]
    assert {k for n in old for k in n} == {"phoneNumber", "label", "createdAt"}
    assert {k for n in new for k in n} == {
        "phoneNumber", "label", "createdAt", "countryCode", "numberType", "billingStatus",
        "nextBillingDate", "monthlyPrice", "releasedAt", "capabilities",
    }  # fmt: skip
    assert len(old) == 194
    assert sum(n.get("billingStatus") == "released" for n in new) == 15
    assert {n["numberType"] for n in new} == {"local", "toll_free", "mobile"}
    assert {n["billingStatus"] for n in new} == {"active", "released"}
    assert all(("releasedAt" in n) == (n["billingStatus"] == "released") for n in new)


def test_sinch_records_look_like_the_seed(simulator: Simulator) -> None:
    """Sinch records have the seed's fields and types, and some expire within 30 days."""
    simulator.set_dataset(numbers=1000)
    records = signed_get(simulator).json()
    assert {k for r in records for k in r} == {
        "number", "groupId", "capabilities", "applicationKey", "countryId", "city",
        "country", "areaCode", "expires", "cost",
    }  # fmt: skip
    assert all(isinstance(r["number"], int) for r in records)
    assert {r["cost"]["currencyId"] for r in records} == {"USD", "EUR"}
    assert {r["countryId"] for r in records} == {"US", "CA", "GB", "DE", "SE", "FR", "AU", "NL"}
    soon = datetime.now(UTC) + timedelta(days=30)
    expires = [datetime.fromisoformat(r["expires"]) for r in records if "expires" in r]
    assert (len(expires), sum(when < soon for when in expires)) == (850, 97)
    assert sum("applicationKey" in r for r in records) == 296


def test_dataset_is_deterministic(simulator: Simulator) -> None:
    """The same dataset gives identical bytes; another seed gives other numbers."""
    first = (signed_get(simulator).content, pingram_get(simulator).content)
    again = (signed_get(simulator).content, pingram_get(simulator).content)
    simulator.set_dataset(seed=8)
    other = (signed_get(simulator).content, pingram_get(simulator).content)
    assert first == again
    assert first[0] != other[0]
    assert first[1] != other[1]


def _differing(before: list[Any], after: list[Any]) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]


def test_revision_changes_the_documented_records(simulator: Simulator) -> None:
    """Revision 1 changes the cost (Sinch) or label (Pingram) of records 0, 100, ..., 900."""
    simulator.set_dataset(numbers=1000)
    sinch0, pingram0 = signed_get(simulator).json(), pingram_get(simulator).json()["numbers"]
    simulator.set_dataset(revision=1)
    sinch1, pingram1 = signed_get(simulator).json(), pingram_get(simulator).json()["numbers"]
    expected = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]
    assert _differing(sinch0, sinch1) == expected
    assert _differing(pingram0, pingram1) == expected
    assert list(changed_indices(1000, 7, 1)) == expected
    assert changed_count(1000, 7, 1) == 10
    assert {k for i in expected for k in sinch0[i] if sinch0[i][k] != sinch1[i][k]} == {"cost"}
    assert {k for i in expected for k in pingram1[i] if pingram0[i].get(k) != pingram1[i][k]} == {
        "label"
    }


def test_all_numbers_are_possible_and_unique(simulator: Simulator) -> None:
    """Every number of a 2,000-number dataset is possible per libphonenumber and unique."""
    simulator.set_dataset(numbers=2000)
    sinch = [f"+{r['number']}" for r in signed_get(simulator).json()]
    pingram = [n["phoneNumber"] for n in pingram_get(simulator).json()["numbers"]]
    parsed = [phonenumbers.parse(n) for n in sinch + pingram]
    assert all(phonenumbers.is_possible_number(p) for p in parsed)
    assert len({phonenumbers.format_number(p, 0) for p in parsed[:2000]}) == 2000
    assert len({phonenumbers.format_number(p, 0) for p in parsed[2000:]}) == 2000


def test_fault_queue_then_normal(simulator: Simulator) -> None:
    """Two queued 503s are answered in turn, then the endpoint is normal again."""
    simulator.faults.add("sinch.numbers", Fault(status=503), Fault(status=503))
    responses = [signed_get(simulator) for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].json() == {"errorCode": 50300, "message": "Service unavailable"}
    assert [r.status for r in simulator.requests] == [503, 503, 200]


def test_retry_after_header_is_sent(simulator: Simulator) -> None:
    """A 429 fault sends Retry-After and Pingram's rate-limit error body."""
    simulator.faults.add("pingram.list", Fault(status=429, retry_after="2"))
    response = pingram_get(simulator)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")
    assert response.json()["error"]["code"] == "rate_limited"


def test_retry_after_http_date(simulator: Simulator) -> None:
    """retry_after_in sends Retry-After as an HTTP-date that many seconds ahead."""
    simulator.faults.add("sinch.numbers", Fault(status=503, retry_after_in=30))
    when = parsedate_to_datetime(signed_get(simulator).headers["Retry-After"])
    assert 25 < (when - datetime.now(UTC)).total_seconds() <= 31


@pytest.mark.parametrize("endpoint", ["sinch.numbers", "pingram.list"])
def test_truncated_body_raises_in_the_client(simulator: Simulator, endpoint: str) -> None:
    """A truncated listing ends without its last chunk, so reading it raises."""
    simulator.faults.add(endpoint, Fault(truncate=True))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        signed_get(simulator) if endpoint == "sinch.numbers" else pingram_get(simulator)
    assert signed_get(simulator).status_code == 200  # the next request is normal


def test_malformed_body_is_not_json(simulator: Simulator) -> None:
    """A malformed listing is complete but not valid JSON."""
    simulator.faults.add("pingram.list", Fault(malformed=True))
    response = pingram_get(simulator)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_wrong_shape_and_empty_listing(simulator: Simulator) -> None:
    """wrong_shape makes the Sinch body an object; empty_listing returns no numbers."""
    simulator.faults.add("sinch.numbers", Fault(wrong_shape=True), Fault(empty_listing=True))
    wrong = signed_get(simulator).json()
    assert (type(wrong).__name__, list(wrong), len(wrong["numbers"])) == ("dict", ["numbers"], 40)
    assert signed_get(simulator).json() == []


def test_bad_records_are_appended(simulator: Simulator) -> None:
    """bad_records appends a duplicate of record 0 and five invalid records."""
    simulator.faults.add("pingram.list", Fault(bad_records=True))
    numbers = pingram_get(simulator).json()["numbers"]
    assert len(numbers) == 46
    assert numbers[40] == numbers[0]
    assert numbers[41]["phoneNumber"] == "+12"


def test_body_delay_trips_a_read_timeout(simulator: Simulator) -> None:
    """A pause half-way through the body trips the client's read timeout."""
    simulator.faults.add("sinch.numbers", Fault(body_delay=1.0))
    with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
        signed_get(simulator, timeout=(5, 0.3))


def test_parse_fault_grammar() -> None:
    """The CLI syntax gives an endpoint and its fault queue."""
    assert parse_fault("sinch.numbers=503*2,ok") == (
        "sinch.numbers",
        [Fault(status=503), Fault(status=503), Fault(status=200)],
    )
    assert parse_fault("pingram.list=429:retry-after=2") == (
        "pingram.list",
        [Fault(status=429, retry_after="2")],
    )
    assert parse_fault("sinch.numbers=truncate:delay=0.5") == (
        "sinch.numbers",
        [Fault(truncate=True, delay=0.5)],
    )
    with pytest.raises(ValueError, match="unknown endpoint"):
        parse_fault("sinch.nope=503")


def test_reset_forgets_everything(simulator: Simulator) -> None:
    """reset() restores the dataset and clears faults, the log and created instances."""
    instance = login_and_create_instance(simulator)
    simulator.set_dataset(numbers=3, revision=2)
    simulator.faults.add("pingram.list", Fault(status=500))
    simulator.reset()
    assert (simulator.requests, simulator.faults.pending("pingram.list")) == ([], 0)
    assert len(pingram_get(simulator).json()["numbers"]) == 40
    refused = signed_get(simulator, instance=(instance["id"], instance["secret"]))
    assert refused.status_code == 401
