"""The events' JSON schema (``events.json_schema``): what the labextension's TypeScript types are generated from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fastjsonschema
import pytest

from llm_agent_magic.events import (
    EVENT_TYPES,
    Answer,
    CellOutput,
    CodeCell,
    PlanCreated,
    RunFinished,
    RunStarted,
    Usage,
    Waiting,
    json_schema,
)

COMMITTED = Path(__file__).parent.parent / "labextension" / "schema-gen" / "events.schema.json"


def test_the_committed_schema_is_the_one_events_py_defines():
    committed = json.loads(COMMITTED.read_text())
    assert committed == json_schema(), (
        "labextension/schema-gen/events.schema.json is stale: run `make events-schema` and commit it "
        "(the panel's TypeScript event types are generated from it)"
    )


def test_the_module_prints_the_schema():
    out = subprocess.run(
        [sys.executable, "-m", "llm_agent_magic.events", "--json-schema"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == json_schema()


def test_every_event_type_is_in_the_schema_under_its_wire_type():
    schema = json_schema()
    assert set(schema["definitions"]) == set(EVENT_TYPES)
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in schema["oneOf"]] == list(EVENT_TYPES)
    cell = schema["definitions"]["code_cell"]
    assert cell["properties"]["type"] == {"type": "string", "const": "code_cell"}
    assert cell["properties"]["step"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert cell["properties"]["approval"]["enum"] == ["", "approved", "edited"]
    assert {"source", "cell_id", "run_id", "ts", "seq"} <= set(cell["required"])


EVENTS = [
    RunStarted("plot it", run_id="r1"),
    Waiting("a run started from the side panel", pid=12, since=3.5, run_id="r1"),
    PlanCreated([{"goal": "load", "tool": "python_coder", "success_criteria": "loaded"}], run_id="r1"),
    CodeCell("print(1)", step=0, run_id="r1"),
    CellOutput("c1", [{"output_type": "stream", "name": "stdout", "text": "1\n"}], final=True, run_id="r1"),
    Answer("**one**", run_id="r1"),
    Usage(10, 2, model="qwen3", run_id="r1"),
    RunFinished("ok", run_id="r1"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_what_the_server_sends_is_valid_and_a_field_the_schema_lacks_is_not(event):
    validate = fastjsonschema.compile(json_schema())
    wire = {**event.to_dict(), "seq": 4}
    validate(wire)
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({**wire, "not_a_field": 1})
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({key: value for key, value in wire.items() if key != "run_id"})


def test_a_status_outside_its_choices_is_invalid():
    validate = fastjsonschema.compile(json_schema())
    wire = RunFinished("ok", run_id="r1").to_dict()
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({**wire, "status": "fine"})
