"""SQL store for the service (drafts, reviews, feedback, outbox, audit); see ``sql.Store``."""

from assistant.store.sql import DraftRef, Store

__all__ = ["DraftRef", "Store"]
