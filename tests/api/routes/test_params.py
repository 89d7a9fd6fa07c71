"""Every integer, list and cursor a request carries is bounded: past the bound it is a 422
naming the parameter, never a 500 (numbers past 64 bits reached numpy and the database; "²"
passed str.isdigit(); a cursor of nested brackets blew the recursion limit)."""

from __future__ import annotations

import base64

import pytest

from tests.api.app_client import AppClient
from tests.api.recorded_runs import RecordedRuns, small_spec

HUGE = "9" * 40
PAST_INT64 = "9223372036854775808"


def _refused(response_status: int, body: dict[str, object], field: str) -> None:
    assert response_status == 422, body
    errors = body["errors"]
    assert isinstance(errors, list) and errors[0]["field"] == field, body


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("predictions", {"offset": "9999999999999999999"}, "offset"),
        ("predictions", {"offset": PAST_INT64}, "offset"),
        ("predictions", {"limit": HUGE}, "limit"),
        ("loss", {"since_step": "999999999999999999999999999999"}, "since_step"),
        ("loss", {"max_points": HUGE}, "max_points"),
        ("events", {"since_step": PAST_INT64}, "since_step"),
    ],
)
def test_integers_past_their_bound_are_422(
    client: AppClient, runs: RecordedRuns, path: str, params: dict[str, str], field: str
) -> None:
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1)
    response = client.get(f"/experiments/{run.id}/{path}", params=params)
    _refused(response.status_code, response.json(), field)


@pytest.mark.parametrize("value", [PAST_INT64, HUGE, "-1", "1e3", "abc", "²", " "])
def test_last_event_id_past_its_bound_or_not_digits_is_422(
    client: AppClient, runs: RecordedRuns, value: str
) -> None:
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1)
    header = {"Last-Event-ID": value.encode()}  # bytes: "²" is not ASCII
    response = client.get(f"/experiments/{run.id}/events", headers=header)
    _refused(response.status_code, response.json(), "last-event-id")


def test_a_last_event_id_past_every_step_resumes_after_the_end(
    client: AppClient, runs: RecordedRuns
) -> None:
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1)
    response = client.get(f"/experiments/{run.id}/events", headers={"Last-Event-ID": "9" * 10})
    assert response.status_code == 200
    assert "event: loss" not in response.text and "event: end" in response.text


@pytest.mark.parametrize(
    ("records", "words"),
    [
        ("²", "not a record index"),  # passes str.isdigit()
        ("1," + "7" * 5000, "not a record index"),
        ("19,x", "not a record index"),
        ("50", "out of range"),
        (",".join(["1"] * 1001), "at most 1000"),
    ],
)
def test_record_lists_have_one_parser_and_it_refuses_with_reasons(
    client: AppClient, runs: RecordedRuns, records: str, words: str
) -> None:
    run = runs.finished_run(small_spec(), accuracy=0.9, final_loss=0.1)
    mine = client.get(f"/experiments/{run.id}/predictions", params={"records": records})
    _refused(mine.status_code, mine.json(), "records")
    assert words in mine.json()["errors"][0]["reason"]
    compared = client.get(
        "/compare/predictions", params={"experiments": run.id, "records": records}
    )
    assert compared.status_code == 422 and compared.json()["errors"][0]["field"] == "records"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _b64(b"[" * 1500),  # nested arrays: a recursion bomb for a JSON parser
        _b64(b'["2024-01-01T00:00:00+00:00", ' + b"[" * 100 + b"]"),
        _b64(b'{"a": 1}'),
        _b64(b'["not a date", "abc"]'),
        _b64(b'["2024-01-01T00:00:00", "abc"]'),  # no timezone
        "A" * 5000,
        "not base64!",
    ],
)
@pytest.mark.parametrize("listing", ["/experiments", "/ablations"])
def test_cursors_are_bounded_in_size_and_shape(
    client: AppClient, listing: str, cursor: str
) -> None:
    response = client.get(listing, params={"cursor": cursor})
    _refused(response.status_code, response.json(), "cursor")
    assert len(response.content) < 2000


@pytest.mark.parametrize(
    "path",
    ["/experiments/" + "a" * 65, "/experiments/a%20b", "/ablations/" + "a" * 65 + "/summary"],
)
def test_ids_in_the_path_are_bounded(client: AppClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["in"] == "path"
