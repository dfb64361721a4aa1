"""The REST API, CDS Hooks and the service wiring (FastAPI); start with ``create_app``."""
