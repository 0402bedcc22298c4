"""Telling automated clients apart by their user agent.

Two kinds of rule: the known-bot list shipped with the service
(`data/known_bots.txt`, plain fragments found anywhere in the user agent, in
any letter case), and an organisation's own patterns, where `*` stands for any
run of characters and the pattern must match the whole user agent.

    known_bot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://...)")  # "Googlebot"
    matching_pattern(["*preview*"], "LinkPreview/1.0")                 # "*preview*"

The known-bot list is compiled once into a single regular expression shaped as
a trie of its fragments, so a user agent is read once, left to right, whatever
the length of the list. Patterns are matched without regular expressions, so
no pattern can make matching slow.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Final

KNOWN_BOTS_RESOURCE: Final = ("data", "known_bots.txt")
WILDCARD: Final = "*"

# The characters of a product name around a matched fragment, so that a
# fragment such as `bot/` is reported as the bot's name (`AhrefsBot`).
_NAME_CHARACTERS: Final = frozenset(string.ascii_letters + string.digits + "_-")


class KnownBots:
    """A compiled list of user-agent fragments."""

    def __init__(self, fragments: Iterable[str]) -> None:
        distinct = sorted({fragment.lower() for fragment in fragments})
        if not distinct or "" in distinct:
            raise ValueError("A known-bot list holds one or more non-empty fragments.")
        self.fragments: tuple[str, ...] = tuple(distinct)
        pattern = _trie_pattern(distinct)
        # Matching lowered text is many times faster than asking the regular
        # expression to ignore case; the slower one serves the rare text whose
        # lowering changes its length (and so the place of a match).
        self._lowered = re.compile(pattern)
        self._any_case = re.compile(pattern, re.IGNORECASE)

    def find(self, user_agent: str) -> str | None:
        """The name of the bot `user_agent` belongs to, or None for none."""
        lowered = user_agent.lower()
        if len(lowered) == len(user_agent):
            match = self._lowered.search(lowered)
        else:
            match = self._any_case.search(user_agent)
        if match is None:
            return None
        start, end = match.span()
        return _name_around(user_agent, start) or user_agent[start:end]


def read_fragments(text: str) -> list[str]:
    """The fragments of a known-bot list: one a line, `#` starting a comment
    line, blank lines ignored, surrounding spaces dropped."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@cache
def shipped_known_bots() -> KnownBots:
    """The list shipped with the service, read and compiled on first use."""
    folder, name = KNOWN_BOTS_RESOURCE
    source = resources.files("signal_admin.processing").joinpath(folder, name)
    return KnownBots(read_fragments(source.read_text(encoding="utf-8")))


def known_bot(user_agent: str) -> str | None:
    """The name of the known bot `user_agent` belongs to, or None."""
    return shipped_known_bots().find(user_agent)


def matching_pattern(patterns: Sequence[str], user_agent: str) -> str | None:
    """The first of `patterns` that matches the whole of `user_agent`, letter
    case aside; `*` matches any run of characters, the empty one included."""
    folded = user_agent.casefold()
    for pattern in patterns:
        if _wildcard_matches(_pieces(pattern), folded):
            return pattern
    return None


def is_only_wildcards(pattern: str) -> bool:
    """Whether `pattern` holds nothing but wildcards and spaces, so that it
    would match every user agent (`*`) or nearly every one (`* *`)."""
    return pattern.replace(WILDCARD, "").strip() == ""


@lru_cache(maxsize=1024)
def _pieces(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.casefold().split(WILDCARD))


def _wildcard_matches(pieces: tuple[str, ...], text: str) -> bool:
    """Whether `text` is `pieces` joined by runs of any characters.

    The first piece must start the text and the last end it; each piece in
    between is taken at its first place after the previous one. Taking the
    first place is never wrong, since a later one would leave less room for
    the rest, so one pass over the text decides.
    """
    if len(pieces) == 1:
        return text == pieces[0]
    first, *middle, last = pieces
    if len(text) < len(first) + len(last) or not text.startswith(first):
        return False
    position = len(first)
    end = len(text) - len(last)
    for piece in middle:
        found = text.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return text.endswith(last)


def _trie_pattern(fragments: Sequence[str]) -> str:
    """One regular expression matching any of `fragments`, shared prefixes
    written once: `goo(?:glebot|dreads)` rather than `googlebot|goodreads`.
    A fragment that is a prefix of others makes them redundant, as any text
    containing them contains it."""
    trie: dict[str, Any] = {}
    for fragment in fragments:
        node = trie
        for character in fragment:
            node = node.setdefault(character, {})
        node[""] = {}
    return _branch_pattern(trie)


def _branch_pattern(node: dict[str, Any]) -> str:
    if "" in node:
        return ""
    branches = [re.escape(char) + _branch_pattern(rest) for char, rest in node.items()]
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(sorted(branches)) + ")"


def _name_around(text: str, position: int) -> str:
    """The run of name characters in `text` that holds `position`."""
    start = position
    while start > 0 and text[start - 1] in _NAME_CHARACTERS:
        start -= 1
    end = position
    while end < len(text) and text[end] in _NAME_CHARACTERS:
        end += 1
    return text[start:end]
