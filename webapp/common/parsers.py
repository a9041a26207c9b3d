"""JSON with a nesting-depth limit, for the REST API and for JSON read from uploads.

Python's ``json`` recurses once per nesting level: a body of 100,000 ``[`` raises
``RecursionError`` deep inside the parser, which the API turned into a 500. Here the nesting depth
is measured first with a linear scan (brackets outside strings, no recursion) and anything deeper
than ``MAX_JSON_DEPTH`` is refused as a parse error (400) before ``json`` sees it.

The limit (64) is a choice: the deepest JSON this application reads (genotypes, configs,
dataset.json) nests fewer than 10 levels.
"""
from __future__ import annotations

import codecs
import json
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json as drf_json

MAX_JSON_DEPTH = 64

#: A JSON string (escapes included) or a bracket: strings are skipped whole, so brackets inside
#: them do not count.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


class JSONTooDeep(ValueError):
    """JSON nested deeper than the limit."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"JSON nested deeper than {limit} levels is not accepted")


def max_json_depth() -> int:
    return int(getattr(settings, "VOXELSEARCH", {}).get("MAX_JSON_DEPTH", MAX_JSON_DEPTH))


def check_json_depth(text: str, limit: int | None = None) -> None:
    """Raise :class:`JSONTooDeep` when ``text`` nests arrays/objects deeper than ``limit``.

    Linear in the text, no recursion; stops at the first level over the limit.
    """
    limit = max_json_depth() if limit is None else limit
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                raise JSONTooDeep(limit)
        elif token in ("]", "}"):
            depth -= 1


def loads_limited(text: str | bytes, limit: int | None = None):
    """``json.loads`` with the depth limit (raises JSONTooDeep or json.JSONDecodeError)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    check_json_depth(text, limit)
    try:
        return json.loads(text)
    except RecursionError as exc:  # a limit set above what the interpreter's stack allows
        raise JSONTooDeep(limit or max_json_depth()) from exc


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSONParser, refusing JSON nested deeper than the limit with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            check_json_depth(text)
            return drf_json.loads(text, parse_constant=drf_json.strict_constant if self.strict else None)
        except JSONTooDeep as exc:
            raise ParseError(f"{exc}.") from exc
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {max_json_depth()} levels is not accepted.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
