"""SQL store for the service (drafts, reviews, feedback, outbox, audit); see ``sql.Store``."""

from assistant.store.sql import Store

__all__ = ["Store"]
