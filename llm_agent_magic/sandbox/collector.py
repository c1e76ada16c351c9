"""iopub messages of one execution into nbformat outputs: cleaned, bounded, and never trusted.

Every display passes through ``untrusted.clean_bundle`` as it arrives. Memory stays bounded however much
the code prints: stream text is kept up to ``OutputLimits.stream_chars``; past that the whole stream goes
to a file in the session's ``outputs/`` folder, the cell keeps its head and its tail with a note naming
the file, and only the tail is held in memory while the rest is written out. Rich outputs have a budget
of their own (count and size); what does not fit is replaced by a note. A message of the wrong shape is
skipped and counted, never raised.
"""

from __future__ import annotations

import collections
import io
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..linear_regex import linear
from .untrusted import clean_bundle, data_size

# RE2: an unterminated ``ESC ]`` repeated (``\x1b]`` * n) made ``re`` scan to the end from each one.
ANSI = linear(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
NOTE = "[llm-agent: {}]"


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


@dataclass(frozen=True)
class OutputLimits:
    """What one execution may leave in its cell (see the SandboxConfig traits of the same meaning)."""

    stream_chars: int = 1_000_000
    rich_chars: int = 10_000_000
    displays: int = 100
    #: Folder for the whole stream output once it is over ``stream_chars``; None: it is only cut.
    spill_dir: Path | None = None


def _mb(chars: int) -> str:
    return f"{chars / 1e6:.1f} MB"


class OutputCollector:
    """Turns iopub messages of one execution into nbformat outputs (streams merged in order).

    Call ``finish()`` once the execution is over: it adds the kept tail of a long output and the notes.
    """

    def __init__(self, limits: OutputLimits | None = None) -> None:
        self.limits = limits or OutputLimits()
        self.outputs: list[dict[str, Any]] = []
        self.execution_count: int | None = None
        self.malformed = 0
        self.spill_path: Path | None = None
        self.stream_total = 0  # characters the code printed, kept or not
        self._stream_kept = 0
        self._spill: io.TextIOBase | None = None
        self.spill_error = ""
        self._tail: collections.deque[list[str]] = collections.deque()
        self._tail_chars = 0
        self._rich_chars = 0
        self._displays_kept = 0
        self._left_out = 0
        self._left_out_examples: list[str] = []
        self._clear_pending = False
        self._finished = False
        # display_id -> indices of outputs showing it, for update_display_data
        self._displays: dict[str, list[int]] = {}
        # Rich outputs are cleaned in a worker thread (``wire.RICH_OUTPUTS``); one message at a time, whatever
        # thread hands it over (a kernel that died is drained while the last one may still be in the thread).
        self._lock = threading.Lock()

    # --- messages ---------------------------------------------------------------------------------------

    def handle(self, msg: Any) -> None:
        with self._lock:
            try:
                self._handle(msg["msg_type"], msg["content"])
            except (KeyError, TypeError, AttributeError, ValueError):
                self.malformed += 1

    def _handle(self, kind: str, content: dict[str, Any]) -> None:
        if not isinstance(content, dict):
            raise TypeError("message content is not a dict")
        if kind == "execute_input":
            count = content.get("execution_count")
            self.execution_count = count if isinstance(count, int) else self.execution_count
            return
        if kind == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self._clear()
            return
        if kind == "update_display_data":
            self._update(content)
            return
        if kind not in ("stream", "display_data", "execute_result", "error"):
            return
        if self._clear_pending:
            self._clear()
        if kind == "stream":
            name = content.get("name", "stdout")
            text = content.get("text", "")
            if name not in ("stdout", "stderr") or not isinstance(text, str):
                raise TypeError("malformed stream message")
            self._stream(name, text)
        elif kind == "error":
            self._error(content)
        else:
            self._display(kind, content)

    def _error(self, content: dict[str, Any]) -> None:
        limit = max(1000, self.limits.stream_chars)
        traceback = content.get("traceback", [])
        if not isinstance(traceback, list):
            traceback = [str(traceback)]
        lines: list[str] = []
        used = 0
        for line in traceback:
            line = strip_ansi(str(line))
            if used + len(line) > limit:
                lines.append(NOTE.format(f"{len(traceback) - len(lines)} more traceback lines were left out"))
                break
            lines.append(line)
            used += len(line)
        evalue = strip_ansi(str(content.get("evalue", "")))
        if len(evalue) > limit:
            evalue = evalue[: limit // 2] + NOTE.format(f"{len(evalue) - limit} characters cut") + evalue[-limit // 2 :]
        self.outputs.append(
            {"output_type": "error", "ename": str(content.get("ename", ""))[:200], "evalue": evalue, "traceback": lines}
        )

    def _leave_out(self, what: str) -> None:
        self._left_out += 1
        if len(self._left_out_examples) < 3:
            self._left_out_examples.append(what)

    def _display(self, kind: str, content: dict[str, Any]) -> None:
        if self._displays_kept >= self.limits.displays:
            self._leave_out("a display")
            return
        data, metadata, _ = clean_bundle(content.get("data", {}), content.get("metadata", {}))
        size = data_size(data)
        if self._rich_chars + size > self.limits.rich_chars:
            self._leave_out(f"a display of {_mb(size)} ({', '.join(data)})")
            data, metadata = (
                {
                    "text/plain": NOTE.format(
                        f"a display of {_mb(size)} was left out: over the {_mb(self.limits.rich_chars)} of rich output "
                        f"an execution may keep (SandboxConfig.max_rich_output_mb)"
                    )
                },
                {},
            )
            size = data_size(data)
        self._rich_chars += size
        self._displays_kept += 1
        out: dict[str, Any] = {"output_type": kind, "data": data, "metadata": metadata}
        if kind == "execute_result":
            count = content.get("execution_count")
            out["execution_count"] = count if isinstance(count, int) else None
            if out["execution_count"] is not None:
                self.execution_count = out["execution_count"]
        display_id = (content.get("transient") or {}).get("display_id")
        if isinstance(display_id, str):
            self._displays.setdefault(display_id, []).append(len(self.outputs))
        self.outputs.append(out)

    def _update(self, content: dict[str, Any]) -> None:
        display_id = (content.get("transient") or {}).get("display_id")
        targets = self._displays.get(display_id, []) if isinstance(display_id, str) else []
        if not targets:
            return
        data, metadata, _ = clean_bundle(content.get("data", {}), content.get("metadata", {}))
        size = data_size(data)
        for i in targets:
            old = data_size(self.outputs[i]["data"])
            if self._rich_chars - old + size > self.limits.rich_chars:
                self._leave_out(f"an update of a display ({_mb(size)})")
                continue
            self._rich_chars += size - old
            self.outputs[i]["data"], self.outputs[i]["metadata"] = data, metadata

    # --- streams ------------------------------------------------------------------------------------------

    def _stream(self, name: str, text: str) -> None:
        self.stream_total += len(text)
        if self._spill is None and self._stream_kept + len(text) > self.limits.stream_chars:
            self._start_spill()
            assert self._spill is not None
            self._spill.write(text)
            # The start of the chunk that went over may still belong to the head the cell keeps.
            room = max(0, self.limits.stream_chars // 2 - self._stream_kept)
            if room:
                self._stream_kept += room
                self._append_stream(name, text[:room])
            self._keep_tail(name, text[room:])
            return
        if self._spill is not None:
            self._spill.write(text)
            self._keep_tail(name, text)
            return
        self._stream_kept += len(text)
        self._append_stream(name, text)

    def _append_stream(self, name: str, text: str) -> None:
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            # A "\r" only rewrites its own line: only the last line of what is kept needs another look.
            cut = last["text"].rfind("\n") + 1
            last["text"] = last["text"][:cut] + _apply_carriage_returns(last["text"][cut:] + text)
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": _apply_carriage_returns(text)})

    def _start_spill(self) -> None:
        if self.limits.spill_dir is None:
            self._spill = _Discard()
            return
        folder = self.limits.spill_dir
        path = folder / f"output-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # O_EXCL | O_NOFOLLOW: never write through something planted at that name.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:  # a full or read-only disk: the output is cut all the same
            self.spill_error = f"the whole output could not be written to {folder}: {exc.strerror or exc}"
            self._spill = _Discard()
            return
        self._spill = os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="")
        self.spill_path = path
        for out in self.outputs:
            if out["output_type"] == "stream":
                self._spill.write(out["text"])

    def _keep_tail(self, name: str, text: str) -> None:
        budget = self.limits.stream_chars - self.limits.stream_chars // 2
        text = text[-budget:] if budget else ""
        self._tail.append([name, text])
        self._tail_chars += len(text)
        while self._tail and self._tail_chars > budget:
            first = self._tail[0]
            extra = self._tail_chars - budget
            if len(first[1]) <= extra:
                self._tail.popleft()
                self._tail_chars -= len(first[1])
            else:
                first[1] = first[1][extra:]
                self._tail_chars -= extra

    def _trim_head(self, keep: int) -> None:
        kept = 0
        for out in self.outputs:
            if out["output_type"] != "stream":
                continue
            room = max(0, keep - kept)
            out["text"] = out["text"][:room]
            kept += len(out["text"])
        self.outputs = [o for o in self.outputs if o["output_type"] != "stream" or o["text"]]

    def _clear(self) -> None:
        self.outputs.clear()
        self._displays.clear()
        self._tail.clear()
        self._clear_pending = False
        self._stream_kept = self._rich_chars = self._displays_kept = self._tail_chars = 0

    # --- the end --------------------------------------------------------------------------------------------

    def finish(self) -> list[dict[str, Any]]:
        """Add the tail of a long output and the notes (once); returns the outputs."""
        if self._finished:
            return self.outputs
        self._finished = True
        if self._spill is not None:
            self._spill.close()
            self._trim_head(self.limits.stream_chars // 2)
            kept = sum(len(o["text"]) for o in self.outputs if o["output_type"] == "stream") + self._tail_chars
            where = f"; the whole output is in {self.spill_path}" if self.spill_path else ""
            where += f"; {self.spill_error}" if self.spill_error else ""
            name = self._tail[0][0] if self._tail else "stdout"
            self.outputs.append(
                {
                    "output_type": "stream",
                    "name": name,
                    "text": "\n"
                    + NOTE.format(
                        f"output cut: {self.stream_total - kept:,} of {self.stream_total:,} characters are not shown, over "
                        f"the {self.limits.stream_chars:,} an execution keeps (SandboxConfig.max_cell_output_kb){where}"
                    )
                    + "\n",
                }
            )
            for tail_name, text in self._tail:
                self._append_stream(tail_name, text)
            self._tail.clear()
        notes = []
        if self._left_out:
            notes.append(
                f"{self._left_out} display{'s were' if self._left_out != 1 else ' was'} left out (over the "
                f"limits of SandboxConfig.max_displays and max_rich_output_mb): "
                f"{'; '.join(self._left_out_examples)}{'; ...' if self._left_out > 3 else ''}"
            )
        if self.malformed:
            notes.append(
                f"{self.malformed} malformed message{'s' if self.malformed != 1 else ''} from the sandbox "
                f"{'were' if self.malformed != 1 else 'was'} ignored"
            )
        for note in notes:
            self.outputs.append({"output_type": "stream", "name": "stderr", "text": NOTE.format(note) + "\n"})
        return self.outputs


class _Discard(io.TextIOBase):
    """Where stream text goes past the limit when there is no folder to write it to."""

    def write(self, text: str) -> int:
        return len(text)


def _apply_carriage_returns(text: str) -> str:
    # Progress bars rewrite their line with "\r": keep what a terminal would show, not every frame. A trailing
    # "\r" stays, so the next chunk of the stream still overwrites the line.
    if "\r" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            segments = line.split("\r")
            kept = [seg for seg in segments if seg]
            line = (kept[-1] if kept else "") + ("\r" if segments[-1] == "" else "")
        lines.append(line)
    return "\n".join(lines)
