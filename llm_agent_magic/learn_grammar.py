"""The words of ``learn`` and ``forget`` (``%agent learn``, the panel's ``/learn``): one grammar, one parser.

    learn PATH... [--collection NAME] [--reembed]
    forget PATH... | --all [--collection NAME]

Parsing only: whether the paths exist, and what is learned, is ``agents/library.py``'s (an empty ``learn``
is refused there, saying what to name, since ``--reembed`` alone is a whole command).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .exceptions import BadRequest

VERBS = ("learn", "forget")
USAGE = {
    "learn": "learn PATH... [--collection NAME] [--reembed]",
    "forget": "forget PATH... | --all [--collection NAME]",
}


@dataclass(frozen=True)
class LibraryCommand:
    verb: str
    paths: list[str] = field(default_factory=list)
    collection: str = ""
    reembed: bool = False
    #: ``forget --all``: the whole collection.
    everything: bool = False


def usage(verb: str, prefix: str = "") -> str:
    return f"usage: {prefix}{USAGE[verb]}"


def parse_library_words(verb: str, words: list[str], prefix: str = "") -> LibraryCommand:
    """The command ``verb words...`` means; ``BadRequest`` (with the usage, each form under ``prefix`` such as
    ``%agent ``) for an option it does not know or a ``--collection`` without a name."""
    if verb not in VERBS:
        raise BadRequest(f"{verb!r} is neither learn nor forget.")
    flags = {"--reembed"} if verb == "learn" else {"--all"}
    paths: list[str] = []
    collection, seen = "", set()
    rest = iter(words)
    for word in rest:
        if word == "--collection" or word.startswith("--collection="):
            collection = word.partition("=")[2] if "=" in word else next(rest, "")
            if not collection or collection.startswith("--"):
                raise BadRequest(f"argument --collection: expected one argument\n{usage(verb, prefix)}")
        elif word in flags:
            seen.add(word)
        elif word.startswith("-") and word != "-":
            raise BadRequest(f"unrecognized arguments: {word}\n{usage(verb, prefix)}")
        else:
            paths.append(word)
    return LibraryCommand(verb, paths, collection, reembed="--reembed" in seen, everything="--all" in seen)


def parse_slash_command(text: str) -> LibraryCommand | None:
    """``/learn docs/ notes.md --collection papers``, ``/forget --all``: None when ``text`` is no such command."""
    words = text.split()
    if not words or words[0] not in ("/learn", "/forget"):
        return None
    return parse_library_words(words[0][1:], words[1:], prefix="/")
