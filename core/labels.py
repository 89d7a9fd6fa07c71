"""One rule for every label a person gives: experiment and ablation names, and tags.

An ablation's name becomes a tag of each of its members, so names and tags share one rule;
whatever passes it can be stored, listed, filtered by and shown again without breaking an
answer or a page. A label is 1..MAX_LABEL_LENGTH characters, with no control characters
(they forge log lines and break terminals), no line or paragraph separators, no bidirectional
overrides (they make text read differently from what it is), and no space at either end (so
"book" and "book " are not two different tags).

The check is Python (a clear reason for each refusal); LABEL_PATTERN says the same thing for
the OpenAPI document, and a test holds the two to the same answers.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_LABEL_LENGTH = 100

# C0 and C1 controls with DEL, the Unicode line and paragraph separators, and the
# bidirectional embedding, override and isolate controls.
# Written as regex escapes, so the pattern in the OpenAPI document reads as text.
_FORBIDDEN_RANGES = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_FORBIDDEN = frozenset(
    [chr(c) for c in range(0x20)]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + ["\u2028", "\u2029"]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)
LABEL_PATTERN = rf"^[^\s{_FORBIDDEN_RANGES}](?:[^{_FORBIDDEN_RANGES}]*[^\s{_FORBIDDEN_RANGES}])?$"


def label_problem(text: str) -> str | None:
    """Why `text` is not a label, or None when it is one."""
    if not text:
        return "must not be empty"
    if len(text) > MAX_LABEL_LENGTH:
        return f"is {len(text):,} characters long; the bound is {MAX_LABEL_LENGTH}"
    for position, char in enumerate(text):
        if char in _FORBIDDEN:
            return (
                f"has the control character U+{ord(char):04X} at position {position}: "
                "labels are plain one-line text"
            )
    if text != text.strip():
        return "starts or ends with a space: remove it"
    return None


def _check_label(text: str) -> str:
    problem = label_problem(text)
    if problem:
        raise ValueError(f"a label {problem}")
    return text


Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LABEL_LENGTH,
        json_schema_extra={"pattern": LABEL_PATTERN},
        description=f"1..{MAX_LABEL_LENGTH} characters of one-line text, no space at either end.",
    ),
    AfterValidator(_check_label),
]
