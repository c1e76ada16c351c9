"""Retrieval collections over REST: list, show, learn, forget, delete, and the side panel's ``/learn`` and
``/forget`` as typed (``POST /llm-agent/api/collections {"command": "/learn docs/"}``: read by the one grammar,
``learn_grammar.py``, and answered with the one wording, ``lines``).

Paths in a request are the server's: relative to its root folder (as JupyterLab's file browser shows
them), or absolute inside it; anything outside the root is refused, as Jupyter's contents API refuses it.
Learning runs in a worker thread with its own event loop, so embedding a large folder never blocks the
server's loop.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..agents.library import Library
from ..exceptions import BadRequest, CollectionError, CollectionNotFound, EmbeddingModelMismatch, LLMError
from ..learn_grammar import LibraryCommand, parse_slash_command, usage
from .base import AgentAPIHandler, fail, json_body


class CollectionsBase(AgentAPIHandler):
    @property
    def library(self) -> Library:
        return self.manager.library

    def root(self) -> Path:
        return self.root_dir

    def paths_in_body(self, data: dict[str, Any], *, required: bool) -> list[str]:
        raw = data.get("paths", [])
        if not isinstance(raw, list) or not all(isinstance(p, str) and p and "\x00" not in p for p in raw):
            fail(400, 'Send {"paths": ["docs/", "notes.md"]}: a list of paths relative to the server\'s root folder.')
        if required and not raw:
            fail(400, 'Name the files or folders: {"paths": ["docs/"]} (relative to the server\'s root folder).')
        root = self.root()
        resolved = []
        for path in raw:
            full = Path(os.path.realpath(root / path.lstrip("/") if not os.path.isabs(path) else path))
            if full != root and not full.is_relative_to(root):
                fail(400, f"{path} is outside the server's root folder {root}; only files under it can be learned.")
            resolved.append(str(full))
        return resolved

    async def _forget(self, name: str, targets: list[str], *, everything: bool) -> None:
        library = self.library
        try:
            result = await asyncio.to_thread(lambda: library.forget(targets, collection=name, everything=everything))
        except CollectionError as exc:
            self.fail_for(exc)
        self.send_json(result.to_dict())

    def fail_for(self, exc: Exception) -> None:
        if isinstance(exc, CollectionNotFound):
            fail(404, str(exc))
        if isinstance(exc, EmbeddingModelMismatch):
            fail(409, f'{exc} Over HTTP: POST /llm-agent/api/collections/{exc.collection}/learn {{"reembed": true}}.')
        if isinstance(exc, CollectionError):
            fail(400, str(exc))
        if isinstance(exc, LLMError):
            fail(502, str(exc))
        raise exc


class CollectionsHandler(CollectionsBase):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        found = await asyncio.to_thread(self.library.collections)
        self.send_json({"collections": [c.to_dict() for c in found], "default": self.library.default_collection()})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        """``{"command": "/learn docs/ notes.md --collection papers"}`` (or ``/forget ... | --all``): carried out
        as the other routes would; the result has ``lines``, what to show."""
        text = json_body(self).get("command")
        try:
            command = parse_slash_command(text) if isinstance(text, str) else None
        except BadRequest as exc:
            fail(400, str(exc))
        if command is None:
            fail(
                400,
                'Send {"command": "/learn PATH... [--collection NAME] [--reembed]"} or '
                '{"command": "/forget PATH... | --all [--collection NAME]"}.',
            )
        if not (command.paths or command.reembed or command.everything):  # said as typed, not as JSON
            fail(400, f"Name the files or folders to {command.verb}.\n{usage(command.verb, '/')}")
        targets = self.paths_in_body({"paths": command.paths}, required=False)
        resolved = LibraryCommand(
            command.verb,
            targets,
            command.collection or self.library.default_collection(),
            reembed=command.reembed,
            everything=command.everything,
        )
        work = self.library.carry_out(resolved, within=self.root())  # no file opened above the root
        try:
            result = await asyncio.to_thread(asyncio.run, work)
        except (CollectionError, EmbeddingModelMismatch, LLMError) as exc:
            self.fail_for(exc)
        self.send_json(result.to_dict())


class CollectionHandler(CollectionsBase):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        try:
            info = await asyncio.to_thread(self.library.collection, name)
        except CollectionError as exc:
            self.fail_for(exc)
        self.send_json(info.to_dict())

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self._forget(name, [], everything=True)


class LearnHandler(CollectionsBase):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """``{"paths": [...], "reembed"?: bool}``: the files and folders to add (or re-embed them all)."""
        data = json_body(self)
        reembed = data.get("reembed", False)
        if not isinstance(reembed, bool):
            fail(400, '"reembed" is true or false.')
        targets = self.paths_in_body(data, required=not reembed)
        try:  # every file opened from the root down, no link followed
            result = await self.library.learn_in_thread(targets, collection=name, reembed=reembed, within=self.root())
        except (CollectionError, EmbeddingModelMismatch, LLMError) as exc:
            self.fail_for(exc)
        self.send_json(result.to_dict())


class ForgetHandler(CollectionsBase):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """``{"paths": [...]}`` forgets those files (every file under a folder); ``{"all": true}`` the collection."""
        data = json_body(self)
        everything = data.get("all", False)
        if not isinstance(everything, bool):
            fail(400, '"all" is true or false.')
        targets = [] if everything else self.paths_in_body(data, required=True)
        await self._forget(name, targets, everything=everything)
