"""One rule for names and tags, said twice (Python and the OpenAPI pattern) and held equal."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from core.labels import LABEL_PATTERN, MAX_LABEL_LENGTH, Label, label_problem

LABEL = TypeAdapter(Label)
SAMPLES = [
    "book", "seed-layernorm 3 epochs", "ünïcödé ✓", "a", "x" * MAX_LABEL_LENGTH, "emoji 👩‍🔬",
    "", " book", "book ", "\tbook", "x" * (MAX_LABEL_LENGTH + 1), "two\nlines", "cr\r",
    "nul\x00", "esc\x1b[31m", "del\x7f", "c1\x85", "ls\u2028", "bidi\u202eevil", "iso\u2066",
    "\u00a0nbsp", "nbsp\u00a0", "in\u00a0side",
]  # fmt: skip


@pytest.mark.parametrize("text", SAMPLES)
def test_the_check_and_the_documented_pattern_agree(text: str) -> None:
    documented = bool(re.fullmatch(LABEL_PATTERN.removeprefix("^").removesuffix("$"), text))
    documented = documented and len(text) <= MAX_LABEL_LENGTH
    assert documented == (label_problem(text) is None), text
    if documented:
        assert LABEL.validate_python(text) == text
    else:
        with pytest.raises(ValidationError):
            LABEL.validate_python(text)


def test_refusals_say_why() -> None:
    assert "U+000A at position 3" in (label_problem("two\nlines") or "")
    assert "101 characters" in (label_problem("x" * 101) or "")
    assert "space" in (label_problem(" x") or "")
