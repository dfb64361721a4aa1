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
    "°f": ("temp_f", 1.0),
    "[degf]": ("temp_f", 1.0),
    "degf": ("temp_f", 1.0),
    "degreesf": ("temp_f", 1.0),
    "degreesfahrenheit": ("temp_f", 1.0),
    "fahrenheit": ("temp_f", 1.0),
    "degreesc": ("temp_c", 1.0),
    "degreescelsius": ("temp_c", 1.0),
    "celsius": ("temp_c", 1.0),
    "°c": ("temp_c", 1.0),
    "degc": ("temp_c", 1.0),
    "units": ("unit", 1.0),
    "unit": ("unit", 1.0),
    "iu": ("unit", 1.0),
    "[iu]": ("unit", 1.0),
    "u": ("unit", 1.0),
    "ml/min": ("flow", 1.0),
    # eGFR is per 1.73 m² of body surface: one unit, not a number and a length
    "ml/min/{1.73_m2}": ("flow", 1.0),
    "ml/min/1.73m2": ("flow", 1.0),
    "ml/min/1.73m²": ("flow", 1.0),
    "ml/min/1.73m^2": ("flow", 1.0),
    "kg/m²": ("bmi", 1.0),
    # concentrations (a drug's strength per volume; a lab's mass per volume): never a dose
    "mg/ml": ("mass_conc", 1.0),
    "mcg/ml": ("mass_conc", 1e-3),
    "ug/ml": ("mass_conc", 1e-3),
    "µg/ml": ("mass_conc", 1e-3),
    "g/ml": ("mass_conc", 1e3),
    "mg/5ml": ("mass_conc", 0.2),
    "ng/ml": ("mass_conc", 1e-6),
    "pg/ml": ("mass_conc", 1e-9),
    "ng/dl": ("mass_conc", 1e-8),
    "mcg/dl": ("mass_conc", 1e-5),
    "ug/dl": ("mass_conc", 1e-5),
    "units/ml": ("unit_conc", 1e3),
    "unt/ml": ("unit_conc", 1e3),
    "u/ml": ("unit_conc", 1e3),
    "iu/ml": ("unit_conc", 1e3),
    "meq/ml": ("meq_conc", 1e3),
    "u/l": ("enzyme", 1.0),
    "iu/l": ("enzyme", 1.0),
    "[iu]/l": ("enzyme", 1.0),
    "miu/l": ("miu_l", 1.0),
    "k[iu]/l": ("kiu_l", 1.0),
    "kiu/l": ("kiu_l", 1.0),
    "ku/l": ("kiu_l", 1.0),
    "m[iu]/l": ("miu_l", 1.0),
    "uiu/ml": ("miu_l", 1.0),
    "[iu]/ml": ("unit_conc", 1e3),
    # a strength per actuation / puff is the mass of one dose unit, like "500 mg" per tablet
    "mg/actuat": ("mass", 1e-3),
    "mcg/actuat": ("mass", 1e-6),
    "meq": ("meq", 1.0),
    "unt": ("unit", 1.0),
    "pg": ("pg", 1.0),
    "fl": ("fl", 1.0),
    "mg/g": ("mg/g", 1.0),
    "{score}": ("score", 1.0),
    "score": ("score", 1.0),
    "puff": ("puff", 1.0),
    "puffs": ("puff", 1.0),
    "tablet": ("tablet", 1.0),
    "tablets": ("tablet", 1.0),
    "pill": ("tablet", 1.0),
    "pills": ("tablet", 1.0),
    "ratio": ("ratio", 1.0),
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
            "mL/min/1.73 m2",
            "mL/min/1.73m²",
            "mL/min/1.73 m²",
            "mL/min/1.73m^2",
            "mL/min/1.73 m^2",
            "mL/min/{1.73_m2}",
            "kg/m²",
            "mg/mL",
            "mcg/mL",
            "µg/mL",
            "ug/mL",
            "ng/mL",
            "pg/mL",
            "ng/dL",
            "mcg/dL",
            "units/mL",
            "U/mL",
            "IU/mL",
            "mEq/mL",
            "U/L",
            "IU/L",
            "mIU/L",
            "kU/L",
            "kIU/L",
            "k[IU]/L",
            "uIU/mL",
            "mEq",
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
            "unit",
            "UNT",
            "U",
            "IU",
            "°C",
            "°F",
            "degrees F",
            "degrees Fahrenheit",
            "degrees C",
            "degrees Celsius",
            "Fahrenheit",
            "Celsius",
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
            "pills",
            "pill",
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


def ratio_value(text: str) -> float | None:
    """``"1:1000"`` -> 0.001; ``None`` when ``text`` is not a ratio."""
    a, sep, b = text.partition(":")
    if not sep:
        return None
    try:
        return float(a) / float(b)
    except (ValueError, ZeroDivisionError):
        return None


# How an approximate word lets the chart's value sit around the stated one (see facts.APPROX).
_RELATIVE_ABOUT = 0.05  # "about 31", "roughly 140/90": within 5 % of what is written
_RELATIVE_NEAR = 0.10  # "just under 7 %", "nearly 7 %": on that side, within 10 %


def _approx_ok(s: float, v: float, approx: str) -> bool:
    room = abs(s)
    if approx == "about":
        return abs(v - s) <= _RELATIVE_ABOUT * room
    if approx == "below":
        return v < s
    if approx == "at_most":
        return v <= s
    if approx == "above":
        return v > s
    if approx == "at_least":
        return v >= s
    if approx == "just_below":
        return s - _RELATIVE_NEAR * room <= v < s
    if approx == "near_below":  # "nearly 7", "almost 7": at most 7, and close to it
        return s - _RELATIVE_NEAR * room <= v <= s
    if approx == "just_above":
        return s < v <= s + _RELATIVE_NEAR * room
    return False


def same_quantity(
    stated: str,
    stated_unit: str | None,
    value: float,
    unit: str | None,
    approx: str | None = None,
) -> bool:
    """Does the chart's ``value unit`` support the statement's number as written?

    The statement's precision decides: 16.556 g/dL supports "16.6 g/dL" and "17 g/dL" (rounded),
    not "16 g/dL". Units convert within a dimension (500 mg = 0.5 g). A statement without a unit
    matches on the number alone. ``approx`` (from the words before the number: "about",
    "under", "just over"...) widens the match the way those words do; a ratio ("1:1000")
    compares by its value.
    """
    r = ratio_value(stated)
    if r is not None:
        return (unit_key(unit) or ("ratio", 1.0))[0] == "ratio" and abs(
            value - r
        ) <= 1e-9 + 1e-6 * r
    try:
        s = Decimal(stated)
    except InvalidOperation:
        return False
    sk, ek = unit_key(stated_unit), unit_key(unit)
    v = value
    if sk is not None and ek is not None:
        temps = {sk[0], ek[0]}
        if temps == {"temp_c", "temp_f"}:  # 101.3 °F is 38.5 °C: an offset, not a factor
            v = value * 9 / 5 + 32 if ek[0] == "temp_c" else (value - 32) * 5 / 9
        elif sk[0] != ek[0]:
            return False
        else:
            v = value * ek[1] / sk[1]
    if approx not in (None, "about"):
        # a bound ("under 9 %", "just over 100") is held to its side: 9.1 is not "under 9"; the
        # same number is accepted (the chart may state the same bound: "more than 10 pounds")
        return abs(v - float(s)) < 1e-9 * max(1.0, abs(v)) or _approx_ok(float(s), v, approx)
    places = decimals(stated)
    if round_half_up(v, places) == s:
        return True
    # Truncation is not rounding, but 0.5 g written "0.50 g" is exact: compare numerically too.
    if abs(v - float(s)) < 1e-9 * max(1.0, abs(v)):
        return True
    return approx is not None and _approx_ok(float(s), v, approx)


_CONC = re.compile(r"^(mg|mcg|µg|ug|g|units?|unt|iu|meq)/(\d*\.?\d*)ml$")
_COUNT_DIMS = frozenset({"tablet", "capsule", "puff", "drop", "spray"})


def concentration(unit: str | None) -> tuple[str, float] | None:
    """A drug concentration per millilitre: ``"mg/5 mL"`` -> ``("mg", 0.2)`` (amount per mL)."""
    u = (unit or "").strip().lower().replace(" ", "")
    m = _CONC.match(u)
    if not m:
        return None
    per = float(m.group(2)) if m.group(2) not in ("", ".") else 1.0
    return (m.group(1), 1.0 / per) if per > 0 else None


def millilitres(value: float, unit: str | None) -> float | None:
    """``value unit`` in mL when ``unit`` is a volume, else ``None``."""
    k = unit_key(unit)
    if k is None or k[0] != "volume":
        return None
    return value * k[1] / 1e-3


def is_count(unit: str | None) -> bool:
    """Tablets, capsules, puffs, drops, sprays: units a dose is counted in."""
    if not unit:
        return False
    k = unit_key(unit)
    u = unit.strip().lower().strip("{}")
    return (k is not None and k[0] in _COUNT_DIMS) or u in {"tbl", "cap", "actuat", "puff"}


def dose_amounts(
    quantities: list[tuple[float, str | None]],
) -> list[tuple[float, str | None]]:
    """Amounts a volume and a concentration imply together: 0.5 mL of 2 mg/mL is 1 mg, and a
    1 mg dose of 2 mg/mL is 0.5 mL. A concentration alone is never a dose."""
    out: list[tuple[float, str | None]] = []
    concs = [(v, c) for v, u in quantities if (c := concentration(u))]
    if not concs:
        return out
    for v, u in quantities:
        ml = millilitres(v, u)
        k = unit_key(u)
        for cv, (num_unit, per_ml) in concs:
            nk = unit_key(num_unit)
            if ml is not None:
                out.append((cv * per_ml * ml, num_unit))
            elif k is not None and nk is not None and k[0] == nk[0] and cv * per_ml > 0:
                out.append((v * k[1] / nk[1] / (cv * per_ml), "mL"))
    return out
