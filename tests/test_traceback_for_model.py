"""What the model is shown of a failed cell's traceback: its own frames and the exception, bounded."""

from __future__ import annotations

from llm_agent_magic.tools.python_coder.errors import TRACEBACK_CHARS, traceback_for_model

LIBRARY = (
    "File /venv/lib/python3.11/site-packages/pandas/core/frame.py:4330, in DataFrame.__getitem__(self, key)\n"
    + "   4329 x = 1\n-> 4330 indexer = self.columns.get_loc(key)\n"
    + "   4331 # more library source\n" * 40
)


def test_user_frames_and_the_exception_are_kept_library_frames_dropped():
    error = {
        "ename": "KeyError",
        "evalue": "'b'",
        "traceback": [
            "-" * 75,
            "KeyError                                  Traceback (most recent call last)",
            LIBRARY,
            "KeyError: 'b'",
            "\nThe above exception was the direct cause of the following exception:\n",
            "Cell In[3], line 2\n      1 df = load()\n----> 2 df['b']\n",
            LIBRARY,
            LIBRARY,
            "KeyError: 'b'",
        ],
    }
    text = traceback_for_model(error)
    assert text == (
        "Traceback, your code's frames (3 library frames left out):\n"
        "Cell In[3], line 2\n      1 df = load()\n----> 2 df['b']\nKeyError: 'b'"
    )


def test_a_syntax_error_keeps_its_caret():
    error = {
        "ename": "SyntaxError",
        "evalue": "incomplete input (1.py, line 1)",
        "traceback": ["  Cell In[2], line 1\n    print(\n          ^\nSyntaxError: incomplete input\n"],
    }
    text = traceback_for_model(error)
    assert "Cell In[2], line 1\n    print(\n          ^" in text and text.endswith("SyntaxError: incomplete input (1.py, line 1)")


def test_hostile_tracebacks_stay_short():
    frames = [f"Cell In[1], line {i}\n" + "x" * 100_000 + "\n----> 9 " + "y" * 100_000 for i in range(10_000)]
    text = traceback_for_model({"ename": "E" * 10_000, "evalue": "v" * 100_000, "traceback": frames})
    assert len(text) <= TRACEBACK_CHARS + 100 and "E" * 100 in text
    assert traceback_for_model({"ename": "ValueError", "evalue": "bad", "traceback": None}) == "ValueError: bad"
