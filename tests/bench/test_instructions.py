"""bench.instructions: only the gateway's handling of each datagram is counted, and the count is Valgrind's."""

from __future__ import annotations

import shutil
import sys

import pytest

from bench import instructions
from tests.cli_usage import usage_error


def test_each_datagram_of_the_measured_operations_goes_through_the_counted_call(monkeypatch) -> None:
    calls = []
    real = sys.call_tracing

    def spy(func, args):
        calls.append(func.__name__)
        return real(func, args)

    monkeypatch.setattr(sys, "call_tracing", spy)
    assert instructions._child("REGISTER", 3, 5) == 0
    # REGISTER → 401, REGISTER with credentials → 200: two datagrams each; the start-up's registrations uncounted.
    assert calls == ["_on_data"] * 6


@pytest.mark.parametrize("argv, message", [
    (["--n", "0"], "--n must be 1 to 100000"),
    (["--operations", "INVITE"], "unknown INVITE"),
    (["--operations", ","], "(none given)"),
    (["--root", "/"], "not a sipgw-lab checkout"),
])
def test_bad_arguments_say_what_is_wrong(argv, message, capsys) -> None:
    assert message in usage_error(instructions.main, argv, capsys)


def test_missing_valgrind_is_named(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(instructions.InstructionError, match="Debian package valgrind"):
        instructions.count(instructions.ROOT, "REGISTER", 1, 1)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="Valgrind is not installed (Debian package valgrind)")
def test_valgrind_counts_the_gateway_s_instructions(capsys) -> None:
    assert instructions.main(["--n", "2", "--users", "2", "--operations", "REGISTER"]) == 0
    out = capsys.readouterr().out
    per_op = next(line for line in out.splitlines() if "instructions per REGISTER" in line)
    # Parsing two requests, a digest check and a binding: hundreds of thousands of instructions, not a handful.
    assert int(per_op.split()[0].replace(",", "")) > 100_000, out
