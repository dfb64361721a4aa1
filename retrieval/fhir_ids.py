"""What a FHIR logical id may be, checked before an id goes into a FHIR server's URL path."""

from __future__ import annotations

import re

# R4 allows [A-Za-z0-9-.]{1,64}; 128 matches the draft API's bound. Nothing that could change a
# URL path ('/', '?', '#', '%') gets through, and "." / ".." are refused.
FHIR_ID = re.compile(r"(?!\.+$)[A-Za-z0-9\-.]{1,128}")


def is_fhir_id(value: object) -> bool:
    return isinstance(value, str) and FHIR_ID.fullmatch(value) is not None
