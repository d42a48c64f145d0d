"""Worker life cycle, the pool's growth past four calls, and the port allocator across processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from sipua import PortAllocator, UAPool, UAWorker, WorkerConfig, WorkerDied

pytestmark = pytest.mark.timeout(60)


def test_killed_worker_raises_worker_died_with_log_tail(spawn):
    w = spawn("victim")
    assert w.ping()["pid"] == w.pid
    t0 = time.monotonic()
    os.kill(w.pid, signal.SIGKILL)
    with pytest.raises(WorkerDied) as info:
        w.wait_event("never_happens", timeout=5)
    assert time.monotonic() - t0 < 5
    err = info.value
    assert err.exitcode == -signal.SIGKILL
    assert "SIGKILL" in str(err)
    assert err.log_tail.strip(), "the error carries the worker's log tail"
    assert err.log_tail in str(err)
    assert not w.alive
    with pytest.raises(WorkerDied):
        w.ping()


def test_pool_grows_past_four_calls(tmp_path):
    """Six simultaneous calls to pool workers: the pool spawns a second process and packs the first."""
    template = WorkerConfig(name="pool", user_agent="sipgw-lab-test pool/1.0", log_path=str(tmp_path / "pool.log"))

    def setup(worker: UAWorker) -> None:
        worker.add_account("a", worker.uri("party"))
        worker.auto_answer("immediate")

    caller_cfg = [WorkerConfig(name=f"caller{i}", user_agent="sipgw-lab-test caller/1.0",
                               log_path=str(tmp_path / f"caller{i}.log")) for i in range(2)]
    with UAPool(template, max_processes=3, on_spawn=setup) as pool:
        callers = [UAWorker.spawn(c) for c in caller_cfg]
        try:
            for c in callers:
                c.add_account("a", c.uri(c.name))
            placed = []
            for i in range(6):
                target = pool.acquire()
                caller = callers[i // 3]
                mark = target.mark()
                call = caller.make_call("a", target.uri("party"))
                incoming = target.wait_event("incoming_call", since=mark)
                target.wait_event("call_state", call=incoming.data["call"], state="CONFIRMED")
                placed.append((caller, call, target))
            m = pool.metrics()
            assert m.processes == 2 and m.spawned_total == 2
            assert sorted(m.reserved_per_process.values()) == [2, 4]
            counts = sorted(len(w.list_calls()) for w in pool.workers)
            assert counts == [2, 4], "the calls really live on the two processes"
            for caller, call, target in placed:
                mark = caller.mark()
                caller.hangup(call)
                caller.wait_event("call_state", since=mark, call=call, state="DISCONNECTED")
                pool.release(target)
            assert pool.metrics().reserved == 0
            assert pool.close_idle(keep=1) == 1
            assert pool.metrics().processes == 1
        finally:
            for c in callers:
                c.close()


def _lease_in_child(lock_dir: str, conn) -> None:
    alloc = PortAllocator(base=30000, limit=30000 + 4 * 32, lock_dir=lock_dir)
    leases = [alloc.lease() for _ in range(2)]
    conn.send([lease.block.index for lease in leases])
    conn.recv()  # hold the leases until the parent has taken its own
    for lease in leases:
        lease.release()


def test_port_allocator_two_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_lease_in_child, args=(str(tmp_path), child))
    proc.start()
    try:
        assert parent.poll(20), "child did not report its leases"
        theirs = set(parent.recv())
        alloc = PortAllocator(base=30000, limit=30000 + 4 * 32, lock_dir=tmp_path)
        ours = [alloc.lease() for _ in range(2)]
        assert len(theirs) == 2 and not theirs & {lease.block.index for lease in ours}
        with pytest.raises(Exception, match="no free block"):
            alloc.lease()
        parent.send("done")
        proc.join(10)
        assert proc.exitcode == 0
        again = alloc.lease()  # a block the child released is free again
        assert again.block.index in theirs
        for lease in [*ours, again]:
            lease.release()
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(2)


def test_pool_ensure_free_spawns_ahead_and_respects_the_limit(tmp_path):
    template = WorkerConfig(name="spare", user_agent="sipgw-lab-test spare/1.0", log_path=str(tmp_path / "s.log"))
    with UAPool(template, max_processes=2) as pool:
        assert pool.ensure_free(5) == 2, "five free slots need two workers of four"
        assert pool.metrics().processes == 2 and pool.metrics().reserved == 0
        assert pool.ensure_free(9) == 0, "max_processes reached: nothing more is spawned"
        taken = [pool.acquire() for _ in range(8)]
        assert {w.name for w in taken} == {w.name for w in pool.workers}
        with pytest.raises(Exception, match="max_processes"):
            pool.acquire()


def test_pool_try_acquire_never_spawns(tmp_path):
    template = WorkerConfig(name="try", user_agent="sipgw-lab-test try/1.0", log_path=str(tmp_path / "t.log"))
    with UAPool(template, max_processes=2) as pool:
        assert pool.try_acquire() is None and pool.metrics().processes == 0
        pool.ensure_free(1)
        got = [pool.try_acquire() for _ in range(5)]
        assert got[:4] == [pool.workers[0]] * 4 and got[4] is None
        assert pool.metrics().processes == 1 and pool.metrics().reserved == 4
