"""Units of measure: parse spellings, convert within a dimension, compare rounded values.

``500mg`` = ``500 mg`` = ``0.5 g``; ``x10^3/uL`` = ``10*3/uL`` = ``K/uL``. A unit we do not know
is compared by its lower-cased spelling, never guessed.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# spelling (lower case, spaces removed) -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "mcg": ("mass", 1e-6),
    "µg": ("mass", 1e-6),
    "ug": ("mass", 1e-6),
    "microgram": ("mass", 1e-6),
    "micrograms": ("mass", 1e-6),
    "mg": ("mass", 1e-3),
    "milligram": ("mass", 1e-3),
    "milligrams": ("mass", 1e-3),
    "g": ("mass", 1.0),
    "gram": ("mass", 1.0),
    "grams": ("mass", 1.0),
    "gm": ("mass", 1.0),
    "kg": ("mass", 1e3),
    "kilogram": ("mass", 1e3),
    "kilograms": ("mass", 1e3),
    "lb": ("mass", 453.59237),
    "lbs": ("mass", 453.59237),
    "[lb_av]": ("mass", 453.59237),
    "pounds": ("mass", 453.59237),
    "ml": ("volume", 1e-3),
    "milliliter": ("volume", 1e-3),
    "milliliters": ("volume", 1e-3),
    "l": ("volume", 1.0),
    "liter": ("volume", 1.0),
    "liters": ("volume", 1.0),
    "cm": ("length", 1e-2),
    "m": ("length", 1.0),
    "mm": ("length", 1e-3),
    "in": ("length", 0.0254),
    "[in_i]": ("length", 0.0254),
    "inches": ("length", 0.0254),
    "mg/dl": ("mass_conc", 1e-3 / 1e-1),
    "g/dl": ("mass_conc", 1.0 / 1e-1),
    "g/l": ("mass_conc", 1.0),
    "mg/l": ("mass_conc", 1e-3),
    "mmol/l": ("molar_conc", 1e-3),
    "meq/l": ("molar_conc", 1e-3),
    "umol/l": ("molar_conc", 1e-6),
    "k/ul": ("count_per_vol", 1e3),
    "10*3/ul": ("count_per_vol", 1e3),
    "x10^3/ul": ("count_per_vol", 1e3),
    "10^3/ul": ("count_per_vol", 1e3),
    "x10*3/ul": ("count_per_vol", 1e3),
    "thou/ul": ("count_per_vol", 1e3),
    "m/ul": ("count_per_vol", 1e6),
    "10*6/ul": ("count_per_vol", 1e6),
    "x10^6/ul": ("count_per_vol", 1e6),
    "10^6/ul": ("count_per_vol", 1e6),
    "/ul": ("count_per_vol", 1.0),
    "mmhg": ("pressure", 1.0),
    "mm[hg]": ("pressure", 1.0),
    "%": ("percent", 1.0),
    "percent": ("percent", 1.0),
    "kg/m2": ("bmi", 1.0),
    "kg/m^2": ("bmi", 1.0),
    "bpm": ("rate", 1.0),
    "/min": ("rate", 1.0),
    "beats/min": ("rate", 1.0),
    "breaths/min": ("rate", 1.0),
    "{beats}/min": ("rate", 1.0),
    "{breaths}/min": ("rate", 1.0),
    "cel": ("temp_c", 1.0),
    "°c": ("temp_c", 1.0),
    "degc": ("temp_c", 1.0),
    "units": ("unit", 1.0),
    "unit": ("unit", 1.0),
    "iu": ("unit", 1.0),
    "[iu]": ("unit", 1.0),
    "u": ("unit", 1.0),
    "ml/min": ("flow", 1.0),
    "ml/min/{1.73_m2}": ("flow", 1.0),
    "ml/min/1.73m2": ("flow", 1.0),
    "pg": ("pg", 1.0),
    "fl": ("fl", 1.0),
    "mg/g": ("mg/g", 1.0),
    "{score}": ("score", 1.0),
    "score": ("score", 1.0),
    "puff": ("puff", 1.0),
    "puffs": ("puff", 1.0),
    "tablet": ("tablet", 1.0),
    "tablets": ("tablet", 1.0),
    "capsule": ("capsule", 1.0),
    "capsules": ("capsule", 1.0),
    "drop": ("drop", 1.0),
    "drops": ("drop", 1.0),
    "spray": ("spray", 1.0),
    "sprays": ("spray", 1.0),
}

# Unit spellings a statement may use, longest first so "mg/dL" wins over "mg".
UNIT_PATTERN = "|".join(
    re.escape(u)
    for u in sorted(
        [
            "mg/dL",
            "g/dL",
            "mmol/L",
            "mEq/L",
            "umol/L",
            "mg/L",
            "g/L",
            "K/uL",
            "10*3/uL",
            "x10^3/uL",
            "10^3/uL",
            "x10*3/uL",
            "M/uL",
            "10*6/uL",
            "x10^6/uL",
            "10^6/uL",
            "mmHg",
            "mm[Hg]",
            "kg/m2",
            "kg/m^2",
            "mL/min/1.73m2",
            "mL/min/{1.73_m2}",
            "mL/min",
            "beats/min",
            "breaths/min",
            "bpm",
            "/min",
            "mcg",
            "µg",
            "mg",
            "kg",
            "g",
            "mL",
            "L",
            "cm",
            "mm",
            "lbs",
            "lb",
            "%",
            "units",
            "IU",
            "°C",
            "pg",
            "fL",
            "micrograms",
            "milligrams",
            "grams",
            "kilograms",
            "milliliters",
            "pounds",
            "percent",
            "puffs",
            "puff",
            "tablets",
            "tablet",
            "capsules",
            "capsule",
            "drops",
            "drop",
            "sprays",
            "spray",
        ],
        key=len,
        reverse=True,
    )
)


def unit_key(unit: str | None) -> tuple[str, float] | None:
    """Dimension and factor of a unit spelling, or ``None`` when there is no unit."""
    if not unit:
        return None
    u = unit.strip().lower().replace(" ", "")
    if u in _UNITS:
        return _UNITS[u]
    return (f"raw:{u}", 1.0)


def decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def round_half_up(value: float, places: int) -> Decimal:
    try:
        return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return Decimal(0)


def same_quantity(stated: str, stated_unit: str | None, value: float, unit: str | None) -> bool:
    """Does the chart's ``value unit`` support the statement's number as written?

    The statement's precision decides: 16.556 g/dL supports "16.6 g/dL" and "17 g/dL" (rounded),
    not "16 g/dL". Units convert within a dimension (500 mg = 0.5 g). A statement without a unit
    matches on the number alone.
    """
    try:
        s = Decimal(stated)
    except InvalidOperation:
        return False
    sk, ek = unit_key(stated_unit), unit_key(unit)
    v = value
    if sk is not None and ek is not None:
        if sk[0] != ek[0]:
            return False
        v = value * ek[1] / sk[1]
    places = decimals(stated)
    if round_half_up(v, places) == s:
        return True
    # Truncation is not rounding, but 0.5 g written "0.50 g" is exact: compare numerically too.
    return abs(v - float(s)) < 1e-9 * max(1.0, abs(v))
