"""A small question set in DABench's format, its tables (with real-world names and encodings) and a
scripted model that answers each question by a marker in its text."""

from __future__ import annotations

import json
from pathlib import Path

#: Tables as real datasets come: a name with spaces, '=' and '+', a byte-order mark and CR-only line ends;
#: a Latin-1 file separated by ';'; and a plain one.
TABLES = {
    "rate=a+b survey 2016.csv": "\ufeffwage,looks\r5.73,4\r4.28,3\r".encode(),
    "ventes latin1.csv": "région;prix\nnord;10\nsud;30\n".encode("latin-1"),
    "plain.csv": b"x\n1\n2\n3\n",
}

QUESTIONS = [
    {
        "id": 1,
        "question": "What is the mean wage? [WAGE]",
        "concepts": ["Summary Statistics"],
        "constraints": "Round to two decimals.",
        "format": "@mean_wage[value], a number rounded to two decimals",
        "file_name": "rate=a+b survey 2016.csv",
        "level": "easy",
    },
    {
        "id": 2,
        "question": "Total price, and the first region? [LATIN]",
        "constraints": "",
        "format": "@total_prix[total] @first_region[name]",
        "file_name": "ventes latin1.csv",
        "level": "medium",
    },
    {
        "id": 3,
        "question": "How many rows? [ROWS]",
        "constraints": "Count every row.",
        "format": "@n_rows[n]",
        "file_name": "plain.csv",
        "level": "hard",
    },
]
LABELS = [
    {"id": 1, "common_answers": [["mean_wage", "5.01"]]},
    {"id": 2, "common_answers": [["total_prix", "40"], ["first_region", "nord"]]},
    {"id": 3, "common_answers": [["n_rows", "3"]]},
]
#: The code each question's cell runs: it has to read the table as it is. WAGE and ROWS print the requested
#: values in the answer format, as the code prompt asks; LATIN prints none of them, so its output gets an
#: adequacy check.
CODE = {
    "WAGE": "import pandas as pd\ndf = pd.read_csv('rate=a+b survey 2016.csv')\n"
    "print('wage', round(df['wage'].mean(), 3), 'rows', len(df))\nprint('@mean_wage[5.01]')",
    "LATIN": "import pandas as pd\ndf = pd.read_csv('ventes latin1.csv', sep=';', encoding='latin-1')\n"
    "print('total', df['prix'].sum(), 'first', df['région'][0])",
    "ROWS": "import pandas as pd\nprint(f\"@n_rows[{len(pd.read_csv('plain.csv'))}]\")",
}
#: Scripted answers: 1 right; 2 half right (40.0 equals 40 as numbers, "Nord" is not "nord"); 3 right, in a code block.
ANSWERS = {
    "WAGE": "The mean wage is @mean_wage[5.01].",
    "LATIN": "@total_prix[40.0] @first_region[Nord]",
    "ROWS": "```\n@n_rows[3]\n```",
}


def write_dataset(folder: Path, questions: list[dict] | None = None, labels: list[dict] | None = None) -> Path:
    """questions.jsonl, labels.jsonl and tables/ in ``folder``; returns ``folder``."""
    tables = folder / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for name, data in TABLES.items():
        (tables / name).write_bytes(data)
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions or QUESTIONS))
    (folder / "labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels or LABELS))
    return folder


def script(
    *, faults: dict[str, dict] | None = None, models: list[str] | None = None, answers: dict[str, str] | None = None
) -> dict:
    """ReAct for every question: python_coder runs the question's code, then finish and the answer.

    ``faults``: marker -> extra rule keys (e.g. ``{"fault": "http_500"}``) for that question's react call.
    ``answers``: marker -> the final answer, instead of ``ANSWERS``'.
    """
    rules: list[dict] = [{"purpose": "react", "match": marker, **extra} for marker, extra in (faults or {}).items()]
    rules += [
        {"purpose": "classify", "reply": {"mode": "react", "reason": "needs the table"}},
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "Done.", "action": "finish", "action_input": "see the output"},
        },
        {"purpose": "react", "reply": {"thought": "Read the table.", "action": "python_coder", "action_input": "go"}},
    ]
    rules += [{"purpose": "code", "match": rf"\[{m}\]", "reply": f"```python\n{code}\n```"} for m, code in CODE.items()]
    rules.append({"purpose": "verify", "reply": {"answers_question": True, "issues": ""}})
    rules += [{"purpose": "answer", "match": rf"\[{m}\]", "reply": text} for m, text in {**ANSWERS, **(answers or {})}.items()]
    out: dict = {"rules": rules}
    if models:
        out["models"] = models
    return out


#: The protocols the scripted server speaks, and the path each one's chat calls go to.
CHAT_PATHS = {"ollama": "/api/chat", "openai": "/v1/chat/completions"}
#: A port nothing listens on: the protocol not under test points there, so a call that went there would fail.
NOWHERE = "http://127.0.0.1:9"


def model_settings(protocol: str, url: str) -> dict[str, str]:
    """LLMConfig settings that reach the scripted server at ``url`` through ``protocol`` and only through it."""
    if protocol == "ollama":
        return {"provider": "ollama", "host": url}
    return {"provider": "openai", "host": NOWHERE, "base_url": f"{url}/v1"}


def model_env(protocol: str, url: str) -> dict[str, str]:
    """The same for ``llm-agent``, as environment variables."""
    names = {"provider": "LLM_AGENT_PROVIDER", "host": "OLLAMA_HOST", "base_url": "LLM_AGENT_BASE_URL"}
    return {names[k]: v for k, v in model_settings(protocol, url).items()}


def chat_requests(server) -> list:
    """The chat calls the scripted server got, by either protocol."""
    return [r for r in server.requests if r.path in CHAT_PATHS.values()]


def seed_of(request) -> object:
    """The seed a chat call asked for: in Ollama's ``options``, at the top of an OpenAI request."""
    return request.body["options"]["seed"] if request.path == CHAT_PATHS["ollama"] else request.body["seed"]


def requests_about(server, marker: str) -> list:
    """The model calls the scripted server got for the question with ``marker``."""
    return [r for r in chat_requests(server) if f"[{marker}]" in r.text]
