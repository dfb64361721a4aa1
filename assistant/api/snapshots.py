"""Finished drafts as ready-to-send JSON, cached by version, for the calls an EHR makes on every
chart open (GET /v1/patients/{id}/summary, CDS patient-view).

Parsing a stored draft (statements, checks, every evidence unit it was shown) was the largest cost
of those calls. A snapshot is built from the parsed ``Draft`` once per version — ``(id,
updated_at)``, which every write changes — and holds bytes and strings only, so a cached one can be
shared by any number of requests and cannot be changed by them.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from assistant.draft import Draft
from assistant.store import DraftRef, Store

MAX_SNAPSHOTS = 512  # ~40 KB each for a typical summary: a bounded few tens of MB


def dumps(obj: Any) -> bytes:
    """JSON as starlette's JSONResponse renders it."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode()


@dataclass(frozen=True)
class DraftSnapshot:
    id: str
    patient_id: str
    status: str
    view: bytes  # the draft's JSON plus open_flags: what draft_view returns, minus live parts
    highlights: tuple[str, ...]  # the first unflagged statements, for a CDS card

    @classmethod
    def of(cls, draft: Draft) -> DraftSnapshot:
        view = draft.model_dump(mode="json")
        view["open_flags"] = [s.id for s in draft.open_flags()]
        return cls(id=draft.id, patient_id=draft.patient_id, status=draft.status,
                   view=dumps(view),
                   highlights=tuple(s.text for s in draft.statements() if not s.flagged)[:3])

    def body(self, live: dict[str, Any]) -> bytes:
        """The view with ``live`` members (links, write-back state, ...) appended."""
        if not live:
            return self.view
        return self.view[:-1] + b"," + dumps(live)[1:]  # splice two JSON objects into one


class SnapshotCache:
    """At most MAX_SNAPSHOTS drafts, least recently used dropped first; one version per draft."""

    def __init__(self, size: int = MAX_SNAPSHOTS) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[datetime, DraftSnapshot]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: Store, ref: DraftRef) -> DraftSnapshot:
        with self._lock:
            hit = self._items.get(ref.id)
            if hit is not None and hit[0] == ref.updated_at:
                self._items.move_to_end(ref.id)
                return hit[1]
        # Parse outside the lock. Keyed by the version actually read: the draft may have been
        # saved again since ``ref`` was taken, and then the newer version is what we serve.
        draft, stamp = store.get_draft_stamped(ref.id)
        snap = DraftSnapshot.of(draft)
        with self._lock:
            self._items[ref.id] = (stamp, snap)
            self._items.move_to_end(ref.id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return snap
