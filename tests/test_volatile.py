"""The injectable clock and the volatile texts a cassette ignores when it fingerprints a request."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from llm_agent_magic import volatile
from llm_agent_magic.exceptions import ConfigurationError
from llm_agent_magic.llm.cassette import PURPOSE_HEADER, Cassette


@pytest.fixture
def zone(monkeypatch):
    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_the_injected_clock_is_shown_in_the_local_zone(monkeypatch, zone):
    monkeypatch.setenv(volatile.NOW_ENV, "2026-11-28T09:15:00+00:00")
    zone("UTC")
    assert volatile.now_text() == "2026-11-28 09:15 UTC (Saturday)"
    zone("America/Los_Angeles")
    assert volatile.now_text() == "2026-11-28 01:15 PST (Saturday)"
    zone("Asia/Kolkata")
    assert volatile.now_text() == "2026-11-28 14:45 IST (Saturday)"


def test_a_clock_without_an_offset_is_local_time(monkeypatch, zone):
    zone("Asia/Kolkata")
    monkeypatch.setenv(volatile.NOW_ENV, "2027-03-02T18:40")
    assert volatile.now_text() == "2027-03-02 18:40 IST (Tuesday)"


def test_a_malformed_clock_says_what_to_write(monkeypatch):
    monkeypatch.setenv(volatile.NOW_ENV, "next tuesday")
    with pytest.raises(ConfigurationError, match="not an ISO 8601 date.*2026-11-28T09:15:00"):
        volatile.now()


def _request(text: str) -> httpx.Request:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": False}
    return httpx.Request("POST", "http://x/api/chat", content=json.dumps(body).encode(), headers={PURPOSE_HEADER: "react"})


def test_fingerprints_ignore_the_clock_and_the_folders_whatever_their_format(monkeypatch, zone, tmp_path):
    cassette = Cassette(tmp_path / "c.jsonl")
    fingerprints = set()
    for now, tz, folder in (
        ("2026-11-28T09:15:00+00:00", "UTC", '/home/ana/project "q"'),
        ("2027-03-02T18:40:00-08:00", "America/Los_Angeles", "/srv/elsewhere/x"),
    ):
        monkeypatch.setenv(volatile.NOW_ENV, now)
        zone(tz)
        volatile.register_path(folder)
        text = f"Now: {volatile.now_text()}. The file is {folder}/data/sales.csv."
        fingerprints.add(cassette.describe(_request(text))["fingerprint"])
    assert len(fingerprints) == 1
    other = cassette.describe(_request("Now: <NOW>. The file is <PATH>/data/other.csv."))["fingerprint"]
    assert other not in fingerprints  # what is not volatile still counts
