"""The provisioned account ``p99`` of an emulated device is removed from its worker whenever it exists there, so it
is never added twice (``add_account refused: account 'p99' already exists``).

The race it reproduces: the account was added, its REGISTER was refused (or its final response never came), so
it was never marked applied; the next set-up (factory reset, provision again) skipped the removal and added the
account again to a worker that still held it. A worker double keeps accounts as the pjsua2 agent does
(``sipua/agent.py`` ``cmd_add_account`` refuses a duplicate id), and answers each REGISTER as the test says.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.drivers.base import CallBook
from harness.emulated.provisioning import PROV_ACCOUNT, PROV_LINE, EmulatedProvisioning
from harness.protocols import OperationFailed, OperationTimeout, RegistrationInfo
from sipua.errors import CommandError


class FakeWorker:
    """Accounts as the agent keeps them; each added account's REGISTER is answered with the next status."""

    def __init__(self, book: CallBook, answers: list[int | None]):
        self.book = book
        self.answers = answers
        self.accounts: set[str] = set()
        self.added: list[str] = []

    def add_account(self, id: str, uri: str, **kw) -> dict:
        if id in self.accounts:
            raise CommandError("fake", "add_account", "duplicate", f"account {id!r} already exists")
        self.accounts.add(id)
        self.added.append(id)
        status = self.answers.pop(0)
        if status is not None:  # None: the final response never comes
            self.book.put_registration(RegistrationInfo(line=PROV_LINE, status_code=status, reason="x",
                                                        expires=3600 if status == 200 else 0,
                                                        registered=status == 200))
        return {"account": id}

    def remove_account(self, id: str) -> dict:
        if id not in self.accounts:
            raise CommandError("fake", "remove_account", "no_such_account", f"no account {id!r}")
        self.accounts.discard(id)
        return {"account": id}


class Device(EmulatedProvisioning):
    device_id = "ata-1"

    def __init__(self, answers: list[int | None]):
        self.book = CallBook(self.device_id)
        self.worker = FakeWorker(self.book, answers)
        self._boot = 1
        gw = SimpleNamespace(domain="sipgw.lab", host="127.0.0.1", port=lambda tp: 5060)
        self.ctx = SimpleNamespace(gateway=gw, transport="udp", options={"provisioning_url": "http://127.0.0.1:1"},
                                   vendor="Yealink", model="T54W", mac="80:5e:c0:12:dc:69",
                                   profile=SimpleNamespace(kind="desk_phone"))

    def _rpc(self, fn):  # what EmulatedDriver._rpc does with a refused command
        try:
            return fn(self.worker)
        except CommandError as exc:
            raise OperationFailed(f"{self.device_id}: {exc.command} refused: {exc.message}") from exc


@pytest.mark.parametrize("first", [403, None], ids=["register-refused", "no-final-response"])
def test_account_left_by_a_failed_registration_is_removed_before_it_is_added_again(first):
    dev = Device([first, 200])
    if first is None:
        with pytest.raises(OperationTimeout):
            dev._register_account("onb-805ec012dc69", "pw", timeout=0.2)
    else:
        assert not dev._register_account("onb-805ec012dc69", "pw", timeout=2).ok
    assert PROV_ACCOUNT in dev.worker.accounts  # the failed registration left the account in the worker
    dev.factory_reset()
    assert PROV_ACCOUNT not in dev.worker.accounts  # a factory reset removes it
    reg = dev._register_account("onb-805ec012dc69", "pw", timeout=2)  # was: add_account refused … already exists
    assert reg.ok and dev.worker.added == [PROV_ACCOUNT, PROV_ACCOUNT]


def test_re_register_removes_the_account_even_when_it_never_registered():
    dev = Device([403, 200])
    assert not dev._register_account("onb-805ec012dc69", "pw", timeout=2).ok
    assert dev._register_account("dev-805ec012dc69", "pw", timeout=2).ok  # the next configuration's account
    assert dev.worker.accounts == {PROV_ACCOUNT}


def test_account_of_an_earlier_worker_boot_is_not_removed_from_the_new_worker():
    dev = Device([200, 200])
    assert dev._register_account("dev-805ec012dc69", "pw", timeout=2).ok
    dev.worker = FakeWorker(dev.book, [200])  # power cycle: a new worker process without the account
    dev._boot = 2
    assert dev._register_account("dev-805ec012dc69", "pw", timeout=2).ok
    assert dev.worker.added == [PROV_ACCOUNT]
