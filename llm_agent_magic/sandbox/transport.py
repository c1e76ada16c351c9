"""Files between this process and a sandbox kernel that shares no disk with it (a gateway's kernel).

The session's folders stay where they are on this machine (``SessionPaths``): everything that reads them
(``describe_file``, the coder's results files, ``%agent pull``, the server's variables, ``load_variable``)
works unchanged. This module keeps them in step with the kernel's own copies, over the kernel protocol
(``inside/remote.py`` is the other end):

- before an execution, workspace files that changed here (``--files``, uploads) are sent, in chunks;
- after it, files the code wrote in its workspace are fetched back, and the snapshots it wrote (the catalog
  and each changed variable's file), so that ``%agent pull`` and a restore work from this side;
- a new kernel (a restart) gets the workspace and the snapshots sent before variables are restored.

What comes back is hostile data, as from a local sandbox: only plain file names (no folders, no leading dot),
each at most ``SandboxConfig.transfer_max_mb``, only the files of catalog entries that pass the catalog's own
checks, written here through ``confined.write_confined`` (a link planted at the name is replaced, never
followed), with the catalog read back through ``read_catalog`` like any other.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from llm_agent_magic.config import SandboxConfig
from llm_agent_magic.exceptions import SandboxStartError, TooLargeToFetch, TransferError

from .inside import catalog as catalog_module
from .inside.confined import UnsafePath, list_confined, open_confined, stat_confined, write_confined
from .inside.remote import MAX_LISTED
from .paths import SessionPaths
from .python_env import ALWAYS_SCRUB
from .wire import EXPR_KEY, reply_data

log = logging.getLogger(__name__)

INSIDE = Path(__file__).parent / "inside"
#: The files of ``inside/`` a gateway's kernel needs, sent as text at each launch.
INSIDE_FILES = ("entrypoint", "summaries", "confined", "atomic", "catalog", "restore", "snapshots", "audit_hook", "remote")
#: Raw bytes per chunk (base64 makes a message a third larger).
CHUNK = 2**20
#: Seconds one chunk may take to cross.
CHUNK_TIMEOUT = 60.0
#: user_expressions key of the workspace listing a gateway's kernel sends with each execute reply.
FILES_KEY = "llm_agent_files"

Helper = Callable[[str, float], Awaitable["dict[str, Any] | None"]]


def bootstrap_code(policy: dict[str, Any]) -> str:
    """Code that turns a gateway's plain ipykernel into the session's sandbox (``entrypoint.boot_remote``).

    It defines one name and deletes it; the answer is read by ``BOOT_ANSWER`` as a user expression.
    """
    sources = {name: (INSIDE / f"{name}.py").read_text(encoding="utf-8") for name in INSIDE_FILES}
    return (
        "def _llm_agent_boot(sources, policy):\n"
        "    import sys, types\n"
        "    module = types.ModuleType('_llm_agent_sandbox_entrypoint')\n"
        "    module.__file__ = '<llm-agent sandbox entrypoint.py>'\n"
        "    sys.modules[module.__name__] = module\n"
        "    exec(compile(sources['entrypoint'], module.__file__, 'exec'), module.__dict__)\n"
        "    module.BOOTED = module.boot_remote(sources, policy)\n"
        f"_llm_agent_boot({sources!r}, __import__('json').loads({json.dumps(policy)!r}))\n"
        "del _llm_agent_boot\n"
    )


BOOT_ANSWER = "__import__('sys').modules['_llm_agent_sandbox_entrypoint'].BOOTED"


def boot_policy(config: SandboxConfig, paths: SessionPaths, launch_id: str) -> dict[str, Any]:
    return {
        "base": f"{paths.root.name}-{launch_id}",
        "scrub": list(config.scrub_env_patterns),
        "always_scrub": sorted(ALWAYS_SCRUB),
        "allow_network": bool(config.allow_network),
        "audit_hook": True,
        "max_transfer_bytes": max_bytes(config),
    }


def max_bytes(config: SandboxConfig) -> int:
    return int(config.transfer_max_mb * 2**20)


class RemoteFiles:
    """The session's files on both sides of one gateway kernel; ``helper`` calls ``_llm_agent_sandbox.<call>``."""

    def __init__(self, helper: Helper, paths: SessionPaths, config: SandboxConfig) -> None:
        self.helper = helper
        self.paths = paths
        self.config = config
        self.limit = max_bytes(config)
        #: Most bytes one sync after an execution fetches from the workspace (the disk quota, else 4 files' worth).
        self.sync_limit = int(config.workspace_quota_mb * 2**20) if config.workspace_quota_mb > 0 else 4 * self.limit
        #: Workspace files as last seen on each side: name -> (size, mtime_ns). What both sides agree on.
        self._sent: dict[str, tuple[int, int]] = {}
        self._fetched: dict[str, tuple[int, int]] = {}
        #: Notes for the model about files that were not moved (too large, refused).
        self.notes: list[str] = []
        #: Bytes of file data received from the kernel so far: what budgets count (never the sizes it claims).
        self.received = 0
        #: What the kernel said when it was set up (``inside/remote.boot``): its folders, Python, scrubbed names.
        self.info: dict[str, Any] = {}

    async def set_up(self, kc: Any, wire: Any, launch_id: str, timeout: float) -> None:
        """Send ``inside/`` to a new kernel (a ``KernelWire`` and its client) and set it up as the sandbox
        (folders, environment, helpers, audit hook); then send the workspace, of which it has nothing."""
        policy = boot_policy(self.config, self.paths, launch_id)
        msg_id = kc.execute(
            bootstrap_code(policy), silent=True, store_history=False, user_expressions={EXPR_KEY: BOOT_ANSWER}, allow_stdin=False
        )
        reply = await wire.reply(msg_id, timeout)
        content = (reply or {}).get("content", {})
        data = reply_data(content) if reply else None
        if data is None or not isinstance(data.get("folders"), dict):
            why = f"{content.get('ename', '')}: {content.get('evalue', '')}" if content.get("status") == "error" else ""
            raise SandboxStartError(
                self.paths.session_id,
                "the gateway's kernel did not take the sandbox's set-up code"
                + (f" ({why[:300]})" if why else " (no answer)")
                + "; its kernel spec must be a Python 3.10+ ipykernel",
            )
        self.info = data
        self.forget()
        await self.push_workspace()

    async def after_execution(
        self, data: dict[str, Any] | None, listing: dict[str, Any] | None, snapshot_limit: int
    ) -> list[str]:
        """Fetch what an execution wrote: workspace files, then the snapshots that changed (after the kernel's
        background writes). Returns the notes for the model (what was not fetched, and why)."""
        notes: list[str] = []
        try:
            await self.pull_workspace(listing)
            snaps = (data or {}).get("snapshots") or {}
            if snaps.get("written") or snaps.get("removed") or snaps.get("not_persisted"):
                if snaps.get("pending"):
                    await self.helper("flush(60.0)", 65.0)
                await self.pull_snapshots(snapshot_limit)
        except (TransferError, OSError) as exc:
            notes.append(f"files could not be fetched from the gateway's kernel ({exc})")
        return notes + self.take_notes()

    async def fetch_snapshots(self, snapshot_limit: int) -> None:
        """``pull_snapshots`` for a front end about to read them: a failure is logged, the last copy stays."""
        try:
            await self.pull_snapshots(snapshot_limit)
        except (TransferError, OSError) as exc:
            log.warning("snapshots of session %s not fetched from the gateway's kernel: %s", self.paths.session_id, exc)

    async def _call(self, call: str, timeout: float = CHUNK_TIMEOUT) -> dict[str, Any]:
        data = await self.helper(call, timeout)
        if data is None:
            raise TransferError(f"the sandbox kernel did not answer {call.split('(', 1)[0]}")
        if "error" in data:
            raise TransferError(str(data["error"])[:500])
        return data

    # --- sending ----------------------------------------------------------------------------------------

    async def send(self, area: str, folder: Path, name: str) -> int:
        """Send ``folder/name`` (a regular file, read without following links) into the kernel's ``area``."""
        with open_confined(folder, name, self.limit) as fh:
            st = os.fstat(fh.fileno())
            offset = 0
            while True:
                chunk = fh.read(CHUNK)
                last = offset + len(chunk) >= st.st_size or not chunk
                b64 = base64.b64encode(chunk).decode("ascii")
                await self._call(f"put({area!r}, {name!r}, {b64!r}, {offset}, {last}, {st.st_mtime_ns})")
                offset += len(chunk)
                if last:
                    return offset

    async def push_workspace(self) -> list[str]:
        """Send the workspace files that changed here since they were last sent or fetched."""
        sent = []
        # Below the top folder too: an attached file keeps its folder (data/sales.csv).
        for entry in list_confined(self.paths.workspace, recursive=True):
            if entry.refused:
                continue
            state = (entry.size, entry.mtime_ns)
            if self._sent.get(entry.relpath) == state or self._fetched.get(entry.relpath) == state:
                continue
            if entry.size > self.limit:
                self._note(
                    f"{entry.relpath} was not sent to the sandbox: it is {entry.size:,} bytes, more than the "
                    f"{self.limit:,} bytes SandboxConfig.transfer_max_mb allows"
                )
                self._sent[entry.relpath] = state
                continue
            await self.send("workspace", self.paths.workspace, entry.relpath)
            self._sent[entry.relpath] = state
            sent.append(entry.relpath)
        return sent

    async def push_snapshots(self) -> list[str]:
        """Send the checked catalog's files and the catalog itself, for a restore in a new kernel."""
        catalog = catalog_module.read_catalog(self.paths.snapshots)
        sent = []
        for name, entry in catalog["variables"].items():
            try:
                await self.send("snapshots", self.paths.snapshots, entry["file"])
                sent.append(name)
            except (OSError, UnsafePath) as exc:  # missing or refused here: the restore reports it missing
                log.debug("snapshot %s not sent: %s", name, exc)
        if catalog["variables"] or catalog["not_persisted"]:
            await self.send("snapshots", self.paths.snapshots, catalog_module.CATALOG)
        return sent

    def forget(self) -> None:
        """A new kernel has none of the files: everything is sent again."""
        self._sent.clear()
        self._fetched.clear()

    # --- fetching ---------------------------------------------------------------------------------------

    async def fetch(self, area: str, name: str, folder: Path, limit: int | None = None) -> tuple[int, int]:
        """Fetch the kernel's ``area/name`` into ``folder/name`` (atomically, never through a link); returns
        its (size, mtime_ns) on the kernel's side."""
        limit = self.limit if limit is None else limit
        _check_name(name)
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            size, mtime_ns = await self._fetch_into(area, name, spool, limit)
            spool.seek(0)
            write_confined(
                folder,
                name,
                lambda out: shutil.copyfileobj(spool, out, CHUNK),
                times_ns=(mtime_ns, mtime_ns) if mtime_ns else None,
            )
        return size, mtime_ns

    async def _fetch_into(self, area: str, name: str, out: IO[bytes], limit: int) -> tuple[int, int]:
        # The kernel's answers are hostile: its sizes are claims, so what counts is the data that arrives, asked
        # for a chunk at a time and never past ``limit``; a file not at its end there is too large.
        offset = 0
        while True:
            ask = min(CHUNK, limit - offset)
            data = await self._call(f"get({area!r}, {name!r}, {offset}, {ask})")
            size, chunk = data.get("size"), data.get("data")
            if not isinstance(size, int) or not isinstance(chunk, str):
                raise TransferError(f"the kernel's answer for {name} is not a file chunk")
            if size > limit:
                raise TooLargeToFetch(f"{name} is {size:,} bytes, more than the {limit:,} allowed")
            if len(chunk) > 4 * ((ask + 2) // 3):
                raise TransferError(f"the kernel sent more of {name} than the {ask:,} bytes asked for")
            raw = base64.b64decode(chunk.encode("ascii"), validate=True)
            if len(raw) > ask:
                raise TransferError(f"the kernel sent more of {name} than the {ask:,} bytes asked for")
            self.received += len(raw)
            offset += len(raw)
            out.write(raw)
            if not data.get("eof") and offset >= limit:
                raise TooLargeToFetch(f"{name} grew past the {limit:,} bytes allowed")
            if data.get("eof") or not raw:  # no more: at its end (or it shrank while it was read)
                mtime = data.get("mtime_ns")
                return offset, mtime if isinstance(mtime, int) and mtime > 0 else 0

    async def pull_workspace(self, listing: dict[str, Any] | None = None) -> list[str]:
        """Fetch the files the code wrote or changed in the kernel's workspace (``listing``: the kernel's
        listing if it came with the execute reply; otherwise it is asked for), at most ``sync_limit`` bytes of
        them: the bytes received count, whatever sizes the listing claims."""
        if listing is None or "error" in listing:
            listing = await self._call("listing('workspace')")
        fetched: list[str] = []
        over_budget: list[str] = []
        start = self.received
        for item in _files(listing)[:MAX_LISTED]:
            name, state = item["name"], (item["size"], item["mtime_ns"])
            if self._settled(item, name, state):
                continue
            room = self.sync_limit - (self.received - start)
            if item["size"] > room or room <= 0:
                over_budget.append(name)
                continue  # tried again after the next execution
            try:
                _check_name(name)
                if item["size"] > self.limit:
                    raise TransferError(
                        f"it is {item['size']:,} bytes, more than the {self.limit:,} bytes SandboxConfig.transfer_max_mb allows"
                    )
                await self.fetch("workspace", name, self.paths.workspace, min(self.limit, room))
            except TooLargeToFetch as exc:
                if room < self.limit:  # the budget ran out in this file: the size the kernel claimed was false
                    over_budget.append(name)
                    continue
                self._note(f"{name[:100]} was not fetched from the sandbox: {exc}")
                self._fetched[name] = state
                continue
            except (TransferError, UnsafePath, ValueError) as exc:
                self._note(f"{name[:100]} was not fetched from the sandbox: {exc}")
                self._fetched[name] = state
                continue
            local = _local_state(self.paths.workspace, name)
            self._fetched[name] = state
            if local is not None:
                self._sent[name] = local
            fetched.append(name)
        if over_budget:
            shown = ", ".join(n[:100] for n in over_budget[:5]) + (", ..." if len(over_budget) > 5 else "")
            self._note(
                f"{len(over_budget):,} file(s) were not fetched from the sandbox ({shown}): the files written "
                f"in one execution pass {self.sync_limit:,} bytes (SandboxConfig.workspace_quota_mb); "
                f"{self.received - start:,} bytes were received"
            )
        return fetched

    def _settled(self, item: dict[str, Any], name: str, state: tuple[Any, Any]) -> bool:
        """Nothing to fetch for this workspace file: fetched or sent as it is now, or refused (the model hears why)."""
        if self._fetched.get(name) == state:
            return True
        if item["refused"]:  # a link, a FIFO...: never fetched
            self._note(f"{name[:100]} was not fetched from the sandbox: {item['refused'][:200]}")
            self._fetched[name] = state
            return True
        if self._sent.get(name) == state:  # what this side sent (with its time), unchanged
            self._fetched[name] = state
            return True
        return False

    async def pull_snapshots(self, snapshot_limit: int) -> list[str]:
        """Fetch the kernel's catalog and the files of its changed entries; write the catalog last."""
        raw = await self._fetch_catalog()
        if raw is None:
            return []
        try:
            remote = json.loads(bytes(raw).decode("utf-8"))
        except ValueError:
            remote = None
        variables = remote.get("variables") if isinstance(remote, dict) else None
        if not isinstance(variables, dict):
            # Written as it came: the local reader sets it aside and says why.
            write_confined(self.paths.snapshots, catalog_module.CATALOG, bytes(raw))
            return []
        here = catalog_module.read_catalog(self.paths.snapshots)["variables"]
        fetched: list[str] = []
        over_budget: list[str] = []
        start = self.received  # the snapshots of one pull share the workspace's budget (a catalog of many entries)
        for name, entry in variables.items():
            if catalog_module.entry_problem(name, entry) is not None:
                continue  # the local reader reports it from the catalog; its file is not fetched
            old = here.get(name)
            if (
                old is not None
                and old.get("fingerprint") == entry.get("fingerprint")
                and entry.get("fingerprint")
                and _local_state(self.paths.snapshots, entry["file"]) is not None
            ):
                continue
            room = self.sync_limit - (self.received - start)
            if room <= 0:
                over_budget.append(name)
                continue
            try:
                await self.fetch("snapshots", entry["file"], self.paths.snapshots, min(self.limit, snapshot_limit, room))
                fetched.append(name)
            except TooLargeToFetch as exc:
                if room < min(self.limit, snapshot_limit):
                    over_budget.append(name)
                else:
                    self._note(f"the snapshot of {name} was not fetched from the sandbox: {exc}")
            except (TransferError, UnsafePath, ValueError) as exc:
                self._note(f"the snapshot of {name} was not fetched from the sandbox: {exc}")
        if over_budget:
            shown = ", ".join(over_budget[:5]) + (", ..." if len(over_budget) > 5 else "")
            self._note(
                f"the snapshots of {len(over_budget):,} variable(s) were not fetched from the sandbox ({shown}): "
                f"they pass {self.sync_limit:,} bytes at once (SandboxConfig.workspace_quota_mb)"
            )
        write_confined(self.paths.snapshots, catalog_module.CATALOG, bytes(raw))
        self._drop_stale_snapshots(here, variables)
        return fetched

    async def _fetch_catalog(self) -> bytes | None:
        """The kernel's snapshot catalog as it sent it; None when it has none yet."""
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            try:
                await self._fetch_into("snapshots", catalog_module.CATALOG, spool, catalog_module.MAX_CATALOG_BYTES)
            except TransferError as exc:
                if "FileNotFoundError" in str(exc):
                    return None
                raise
            spool.seek(0)
            return spool.read()

    def _drop_stale_snapshots(self, here: dict[str, Any], variables: dict[str, Any]) -> None:
        """The files of variables the kernel dropped (``here``: this side's catalog, ``variables``: the kernel's)."""
        kept = {e.get("file") for e in variables.values() if isinstance(e, dict)}
        for name, entry in here.items():
            if name not in variables and entry["file"] not in kept:
                try:
                    (self.paths.snapshots / entry["file"]).unlink(missing_ok=True)  # a checked plain name
                except OSError:
                    pass

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    def _note(self, text: str) -> None:
        log.info("%s", text)
        self.notes.append(text)


def _files(listing: dict[str, Any]) -> list[dict[str, Any]]:
    """The listing's entries of the right shape (the kernel's answer is hostile too)."""
    files = listing.get("files")
    good = []
    for item in files if isinstance(files, list) else []:
        if (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("size"), int)
            and isinstance(item.get("mtime_ns"), int)
            and isinstance(item.get("refused", ""), str)
        ):
            good.append(
                {"name": item["name"], "size": item["size"], "mtime_ns": item["mtime_ns"], "refused": item.get("refused", "")}
            )
    return good


def _check_name(name: str) -> None:
    if (
        not name
        or name in (".", "..")
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or len(name) > 255
        or any(ord(c) < 32 for c in name)
    ):
        raise ValueError(f"{name[:100]!r} is not a plain file name")


def _local_state(folder: Path, name: str) -> tuple[int, int] | None:
    try:
        st = stat_confined(folder, name)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
