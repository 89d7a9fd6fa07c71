"""Strong entity tags for the answers clients poll, and conditional GETs on them.

An ETag is a digest of the exact bytes of the answer's body, so it changes whenever anything
in the body changes (status, step, metrics, a new loss point, an attempt, a name) and only
then: no version column can be forgotten. A client that sends the tag back in `If-None-Match`
gets `304 Not Modified` with no body while the answer is the same. The 304 is decided in the
route, after the route's dependencies have checked the caller's key and role, so a tag never
stands in for permission.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Response

from api.http.json_bytes import JSON

__all__ = ["JSON", "conditional_json", "etag_of", "matches"]
# A poller must ask again each time (the answer changes while a run trains), but may reuse its
# copy when the server says 304.
REVALIDATE = "no-cache"


def etag_of(body: bytes) -> str:
    """A strong tag for `body`: 128 bits of BLAKE2b, quoted as RFC 9110 wants."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (RFC 9110 13.1.2: a list of tags, `*`, weak
    comparison, so `W/"x"` matches `"x"`)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def conditional_json(body: bytes, if_none_match: str | None) -> Response:
    """`body` as JSON with its ETag, or a 304 without a body when the client has it already."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": REVALIDATE}
    if matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type=JSON, headers=headers)


NOT_MODIFIED_DOC: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not Modified: the answer is the one whose ETag the request sent in "
        "If-None-Match (no body).",
        "headers": {
            "ETag": {"description": "The answer's strong entity tag.", "schema": {"type": "string"}}
        },
    }
}
