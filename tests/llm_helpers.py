"""Helpers of the model client's tests: a port nothing listens on, and the call log's records."""

import json
import socket


def closed_port() -> int:
    """A local port nothing listens on (bound, then let go): a model server that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_records(paths, client) -> list[dict]:
    """Every record of ``client``'s call log so far."""
    client.call_log.flush()
    path = paths.logs_dir / "llm_calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]
