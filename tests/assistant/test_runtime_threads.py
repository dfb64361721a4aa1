"""The Runtime's shared parts under concurrent first use (drafts run in job threads)."""

from __future__ import annotations

import threading
from pathlib import Path

from assistant.llm.base import PerThreadUsage, usage
from assistant.runtime import Runtime
from assistant.settings import Settings


def _together(n: int, fn: object) -> list[object]:
    barrier = threading.Barrier(n)
    out: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            out.append(fn())  # type: ignore[operator]
        except BaseException as exc:  # collected, then re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def test_parts_are_built_once_when_threads_start_together(tmp_path: Path) -> None:
    rt = Runtime(Settings(data_dir=tmp_path / "data"))
    try:
        # qdrant-edge refuses a second handle on one folder, so a double build would raise here
        indexes = _together(6, lambda: rt.index)
        stores = _together(6, lambda: rt.store)
        assert len({id(i) for i in indexes}) == 1 and len({id(s) for s in stores}) == 1
        added = _together(4, rt.ensure_knowledge_indexed)
        assert sorted(added)[:-1] == [0, 0, 0] and sorted(added)[-1] > 0  # ingested once
        assert rt.index.count(kind="knowledge") == sorted(added)[-1]
    finally:
        rt.close()


def test_token_usage_is_per_thread() -> None:
    backend = PerThreadUsage()
    backend.last_usage = usage(10, 5)
    seen: list[object] = []

    def other() -> None:
        seen.append(backend.last_usage)  # nothing recorded in this thread yet
        backend.last_usage = usage(99, 1)
        seen.append(backend.last_usage)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen[0] is None and seen[1] == usage(99, 1)
    assert backend.last_usage == usage(10, 5)
