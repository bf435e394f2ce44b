"""Recognizing a pointer query's request head in a byte stream, looking at each byte once.

`QueryHeadReader` is sans-I/O: the connection appends what it reads to one buffer and asks the reader
about it; the reader resumes where it stopped, so a head that arrives a byte at a time costs what it
costs in one piece. Its patterns are single character-class runs (they cannot backtrack), and it never
looks past `HEAD_LIMIT` bytes. It answers `QueryHead` for `GET /<token> HTTP/1.1` with plain headers,
no body and no `Accept` that prefers HTML (a browser's: the page is aiohttp's), `NOT_A_QUERY` as soon as
the bytes can no longer become one, and None while they still can.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from spsp_pull.web.negotiation import prefers_html

HEAD_LIMIT = 8192
MAX_HEADERS = 100  # aiohttp refuses more than 128
METHOD = b"GET /"
REQUEST_LINE_LIMIT = len(b"GET / HTTP/1.1\r\n") + 64
# Each pattern is a sequence of character-class runs, each ended by a character it cannot contain:
# matching is one pass with nothing to backtrack into. None can cross a line (no CR, no LF).
REQUEST_LINE = re.compile(rb"GET /([A-Za-z0-9_-]{1,64}) HTTP/1\.1")
REQUEST_LINE_PREFIX = re.compile(rb"GET /[A-Za-z0-9_-]{0,64}")
HEADER_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([\t\x20-\x7e]*)")
NOT_IN_A_LINE = re.compile(rb"[^\t\x20-\x7e]")
CR = ord("\r")
# Headers that give the request a body, or change what happens to the connection.
NOT_SERVED_HEADERS = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
LOGGED_HEADERS = frozenset({b"referer", b"user-agent", b"x-request-id"})


class NotAQuery(enum.Enum):
    NOT_A_QUERY = "not a query"


NOT_A_QUERY: Final = NotAQuery.NOT_A_QUERY


@dataclass(frozen=True, slots=True)
class QueryHead:
    token: str
    end: int  # bytes of the buffer the head takes, through its empty line
    referer: str | None
    user_agent: str | None
    request_id: str | None  # as the client sent it


class QueryHeadReader:
    """One request head at a time, from offset 0 of the buffer it is given; `reset()` before the next.

    Each read searches only the bytes that arrived since the last one, and matches each line once,
    when its CR LF has arrived. Bytes of a line still incomplete are checked as they arrive, so a head
    that cannot become a query is known at once; only an incomplete request line (at most
    `REQUEST_LINE_LIMIT` bytes) is looked at again on each read."""

    def __init__(self, reserved: frozenset[str]) -> None:
        self._reserved = reserved
        self.examined = 0  # bytes looked at, over the reader's life
        self.reset()

    def reset(self) -> None:
        self._searched = 0  # bytes already searched for the head's end
        self._matched = 0  # bytes of complete lines already matched
        self._token: str | None = None
        self._names: set[bytes] = set()
        self._logged: dict[bytes, str] = {}

    def read(self, buffer: bytes | bytearray) -> QueryHead | NotAQuery | None:
        """What the head at the start of `buffer` is, as far as its bytes tell so far."""
        searched, matched = self._searched, self._matched
        end = min(len(buffer), HEAD_LIMIT)
        if end == searched:
            return None
        self._searched = end
        search_from = max(searched - 3, 0)
        head_end = buffer.find(b"\r\n\r\n", search_from, end)
        self.examined += (end if head_end < 0 else head_end + 4) - search_from
        if head_end >= 0:
            lines_end = head_end + 2
        else:
            last_line_end = buffer.rfind(b"\r\n", max(searched - 1, matched), end)
            lines_end = last_line_end + 2 if last_line_end >= 0 else matched
        if lines_end > matched:
            self._matched = lines_end
            self.examined += lines_end - matched
            if self._lines(bytes(buffer[matched : lines_end - 2]).split(b"\r\n")) is NOT_A_QUERY:
                return NOT_A_QUERY
        if head_end >= 0:
            assert self._token is not None
            logged = self._logged
            return QueryHead(
                self._token,
                head_end + 4,
                logged.get(b"referer"),
                logged.get(b"user-agent"),
                logged.get(b"x-request-id"),
            )
        if end == HEAD_LIMIT or not self._incomplete_line_may_do(buffer, max(searched - 1, lines_end), end):
            return NOT_A_QUERY
        return None

    def _lines(self, lines: list[bytes]) -> NotAQuery | None:
        if self._token is None:
            request = REQUEST_LINE.fullmatch(lines[0])
            if request is None or request[1].decode() in self._reserved:
                return NOT_A_QUERY
            self._token = request[1].decode()
            lines = lines[1:]
        names, logged = self._names, self._logged
        if len(names) + len(lines) > MAX_HEADERS:
            return NOT_A_QUERY
        for line in lines:
            field = HEADER_FIELD.fullmatch(line)
            if field is None:
                return NOT_A_QUERY
            name = field[1].lower()
            if name in names or name in NOT_SERVED_HEADERS:
                return NOT_A_QUERY  # aiohttp refuses some repeated headers: it decides
            names.add(name)
            if name == b"connection":
                if field[2].strip(b"\t ").lower() != b"keep-alive":
                    return NOT_A_QUERY
            elif name == b"content-length":
                if field[2].strip(b"\t ") != b"0":
                    return NOT_A_QUERY
            elif name == b"accept":
                if b"html" in field[2].lower() and prefers_html(field[2].decode()):
                    return NOT_A_QUERY  # a browser: aiohttp's route serves the pointer's page
            elif name in LOGGED_HEADERS:
                logged[name] = field[2].strip(b"\t ").decode()
        return None

    def _incomplete_line_may_do(self, buffer: bytes | bytearray, start: int, end: int) -> bool:
        """Whether the line after the last complete one, `buffer[start:end]` new, can still be a query's."""
        if self._token is None:
            line = bytes(buffer[:end])
            self.examined += end
            if end <= len(METHOD):
                return METHOD.startswith(line)
            prefix = REQUEST_LINE_PREFIX.match(line)
            return (
                end < REQUEST_LINE_LIMIT
                and prefix is not None
                and (prefix.end() == end or b" HTTP/1.1\r".startswith(line[prefix.end() :]))
            )
        # printable, or the CR that ends it as its last byte so far
        check_end = end - 1 if buffer[end - 1] == CR else end
        return NOT_IN_A_LINE.search(buffer, start, check_end) is None
