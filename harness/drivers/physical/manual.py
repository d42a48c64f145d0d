"""Manual steps: a person confirms an action at the terminal or on a small local web page, within a deadline.

Every answer is recorded as a traced step (``manual.ask``) with the question, the answer, who answered and
how, so the evidence shows the step was manual. Where nobody can answer (CI, ``SIPGW_MANUAL=none``, stdin
not a terminal) a manual step raises :class:`ManualStepUnavailable` at once instead of hanging; suites mark
such tests ``@pytest.mark.manual`` so ``-m "not manual"`` deselects them.

``SIPGW_MANUAL`` selects the answer source: ``terminal`` (default when stdin is a terminal), ``web``
(a page on ``127.0.0.1``; ``SIPGW_MANUAL_PORT`` fixes the port), ``none``.
"""

from __future__ import annotations

import getpass
import html
import os
import select
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import steps
from harness.protocols import NotApplicable, OperationFailed, OperationTimeout

DEFAULT_DEADLINE_S = 120.0


class ManualStepUnavailable(NotApplicable):
    """Nobody can answer a manual step in this run (non-interactive)."""


class ManualStepRefused(OperationFailed):
    """The person answered that the step could not be done (the note says why)."""


@dataclass(frozen=True)
class Answer:
    done: bool
    who: str
    via: str
    note: str = ""


class AnswerSource:
    via = "none"

    def ask(self, question: str, deadline_s: float) -> Answer:
        raise ManualStepUnavailable(f"manual step needed but no one can answer in this run "
                                    f"(set SIPGW_MANUAL=terminal or web): {question}")


class NonInteractive(AnswerSource):
    pass


class Scripted(AnswerSource):
    """Answers given in advance (tests, or a lab script that performs the actions itself)."""

    via = "scripted"

    def __init__(self, answers: list[Answer] | None = None, who: str = "script") -> None:
        self.answers = list(answers or [])
        self.who = who
        self.questions: list[str] = []

    def ask(self, question: str, deadline_s: float) -> Answer:
        self.questions.append(question)
        if self.answers:
            return self.answers.pop(0)
        return Answer(True, self.who, self.via)


class Terminal(AnswerSource):
    via = "terminal"

    def ask(self, question: str, deadline_s: float) -> Answer:
        out = sys.stderr
        out.write(f"\n[manual] {question}\n[manual] type y when done, n <reason> if it cannot be done "
                  f"({deadline_s:.0f} s): ")
        out.flush()
        ready, _, _ = select.select([sys.stdin], [], [], deadline_s)
        if not ready:
            raise OperationTimeout(f"no answer at the terminal within {deadline_s:.0f} s to: {question}")
        text = sys.stdin.readline().strip()
        who = os.environ.get("SIPGW_OPERATOR") or getpass.getuser()
        return Answer(text.lower().startswith("y"), who, self.via, text[1:].strip())


class WebPage(AnswerSource):
    """One question at a time on ``http://127.0.0.1:<port>/``; the person types a name and presses Done or
    Cannot."""

    via = "web"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._cond = threading.Condition()
        self.question: str | None = None
        self.answer: Answer | None = None
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                q = html.escape(source.question or "No step is waiting.")
                body = (f"<!doctype html><title>sipgw-lab manual step</title><p>{q}</p>"
                        "<form method=post><input name=who placeholder='your name' required> "
                        "<input name=note placeholder='note'> <button name=done value=1>Done</button> "
                        "<button name=done value=0>Cannot</button></form>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
                with source._cond:
                    if source.question is not None and form.get("who"):
                        source.answer = Answer(form.get("done") == "1", form["who"], "web", form.get("note", ""))
                        source._cond.notify_all()
                self.send_response(303)
                self.send_header("Location", "/")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="manual-web").start()

    def ask(self, question: str, deadline_s: float) -> Answer:
        with self._cond:
            self.question, self.answer = question, None
            sys.stderr.write(f"[manual] {question} — answer at {self.url}\n")
            end = time.monotonic() + deadline_s
            while self.answer is None:
                left = end - time.monotonic()
                if left <= 0:
                    self.question = None
                    raise OperationTimeout(f"no answer on {self.url} within {deadline_s:.0f} s to: {question}")
                self._cond.wait(left)
            answer, self.question = self.answer, None
            return answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_default: AnswerSource | None = None


def default_source() -> AnswerSource:
    global _default
    if _default is None:
        mode = os.environ.get("SIPGW_MANUAL") or ("terminal" if sys.stdin.isatty() else "none")
        if mode == "terminal":
            _default = Terminal()
        elif mode == "web":
            _default = WebPage(port=int(os.environ.get("SIPGW_MANUAL_PORT", "0")))
        elif mode == "none":
            _default = NonInteractive()
        else:
            raise ValueError(f"SIPGW_MANUAL={mode!r}: use terminal, web or none")
    return _default


def ask(question: str, *, device_id: str | None = None, source: AnswerSource | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S) -> Answer:
    """Ask a person to do ``question``; returns the answer (recorded as a manual step) or raises."""
    src = source or default_source()
    t0 = time.monotonic()
    try:
        answer = src.ask(question, deadline_s)
    except Exception as exc:
        steps.record("manual.ask", args={"question": question, "via": src.via}, ok=False, error=exc,
                     duration_s=time.monotonic() - t0, device_id=device_id)
        raise
    steps.record("manual.ask", args={"question": question, "via": answer.via},
                 result={"manual": True, "done": answer.done, "who": answer.who, "note": answer.note},
                 ok=answer.done, duration_s=time.monotonic() - t0, device_id=device_id)
    if not answer.done:
        raise ManualStepRefused(f"{device_id or 'device'}: {answer.who} answered that it cannot be done: "
                                f"{question}" + (f" ({answer.note})" if answer.note else ""))
    return answer


class ManualDeviceSide:
    """Settings and confirmations at a physical device, done by a person (or their provisioning server)."""

    kind = "manual"

    def __init__(self, device_id: str, source: AnswerSource | None = None) -> None:
        self.device_id = device_id
        self.source = source
        self.actions: list[str] = []

    @classmethod
    def from_options(cls, device_id: str, options: dict) -> ManualDeviceSide:
        return cls(device_id, options.get("manual_source"))

    def apply_config(self, params: dict[str, str], why: str) -> str:
        listing = ", ".join(f"{k}={v if 'password' not in k.lower() else '<from your secret store>'}"
                            for k, v in sorted(params.items()))
        a = ask(f"{self.device_id}: {why}. Set {listing} (provisioning file or the device's web UI) and let "
                "the device apply it.", device_id=self.device_id, source=self.source)
        self.actions.append(f"{a.who} set {', '.join(sorted(params))}")
        return a.who

    def confirm_on_device(self, prompt: str) -> str:
        a = ask(f"{self.device_id}: accept {prompt!r} on the device's screen.", device_id=self.device_id,
                source=self.source)
        self.actions.append(f"{a.who} confirmed {prompt!r}")
        return a.who
