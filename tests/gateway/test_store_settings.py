"""Store settings: served from memory after the first read, written through, and read back after a reopen."""

from __future__ import annotations

from gateway.store.sqlite import Store


def test_settings_cached_written_through_and_durable(tmp_path):
    path = tmp_path / "gw.db"
    store = Store(path)
    store.set_setting("before_first_read", "1")
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    assert store.setting("before_first_read") == "1" and store.setting("missing", "d") == "d"
    for _ in range(100):
        store.setting("before_first_read")
    assert sum("FROM settings" in s for s in statements) == 1  # one query, then memory
    store.set_setting("voicemail.no_answer_s.amy", "7")
    store.set_setting("before_first_read", "2")
    assert store.setting("voicemail.no_answer_s.amy") == "7" and store.setting("before_first_read") == "2"
    store.close()
    again = Store(path)
    try:
        assert again.setting("voicemail.no_answer_s.amy") == "7" and again.setting("before_first_read") == "2"
    finally:
        again.close()
