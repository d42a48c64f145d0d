"""The grammar helpers that stand in for regular expressions on the hot path: same answers as the expressions."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.sip.abnf import TOKEN_ALPHABET, TOKEN_RE, is_token, made_of

_ODD = " \t\r\n;=:[]\"<>@,/é\x00\x7f"


@given(st.text(alphabet=TOKEN_ALPHABET + _ODD, max_size=16))
@example("")
@example("INVITE")
@example("r0123456789")
@example("a-b.c!d%e*f_g+h`i'j~k")
@example("é")
@example("٣")  # a non-ASCII digit: isalnum is true, it is not a token character
def test_is_token_answers_as_token_re(text: str) -> None:
    assert is_token(text) == (TOKEN_RE.fullmatch(text) is not None)


@pytest.mark.parametrize("alphabet", [TOKEN_ALPHABET + "[]:", TOKEN_ALPHABET])
@given(text=st.text(alphabet=TOKEN_ALPHABET + _ODD, max_size=16))
def test_made_of_answers_as_a_character_class(alphabet: str, text: str) -> None:
    assert made_of(text, alphabet) == (re.fullmatch(f"[{re.escape(alphabet)}]+", text) is not None)
