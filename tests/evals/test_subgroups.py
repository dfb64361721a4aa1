"""Subgroup breakdown and the worse-beyond-interval flag, on hand-made records."""

from __future__ import annotations

from evals_helpers import record

from evals.subgroups import breakdown, worse_beyond_interval


def test_worse_beyond_interval_by_hand() -> None:
    # one case each: 8/10 -> Wilson [0.490, 0.943]; 2/100 -> [0.0055, 0.0700]: disjoint, group
    # worse (lower is better) -> flagged
    assert worse_beyond_interval([(8, 10)], [(2, 100)], "lower")
    # 2/10 -> [0.057, 0.510] overlaps 2/100's [0.0055, 0.0700]: not flagged
    assert not worse_beyond_interval([(2, 10)], [(2, 100)], "lower")
    # higher-is-better mirror: 2/10 coverage vs 98/100 -> group worse
    assert worse_beyond_interval([(2, 10)], [(98, 100)], "higher")
    assert not worse_beyond_interval([(0, 0)], [(1, 10)], "lower")


def test_one_looping_draft_does_not_flag_its_group() -> None:
    # group: 20 drafts, one repeats an unsupported sentence 20 times (20/20), the rest 0/20:
    # pooled 20/400 = 0.05, Wilson [0.033, 0.076] sits above the rest's 4/800 [0.002, 0.013],
    # but resampling drafts often leaves the looping one out, so the group is not flagged.
    group = [(20, 20)] + [(0, 20)] * 19
    rest = [(1, 20)] * 4 + [(0, 20)] * 36
    assert not worse_beyond_interval(group, rest, "lower")
    # spread over the drafts instead (1/20 in each), the same 20 errors are a real difference
    assert worse_beyond_interval([(1, 20)] * 20, rest, "lower")


def test_breakdown_flags_the_bad_group_only() -> None:
    recs = []
    for i in range(10):  # payer "Bad Plan": 8 of 10 statements unsupported in every case
        recs.append(record(f"b{i}", unsupported=(8, 10), groups={
            "age_band": "65+", "sex": "male", "race": "Asian", "ethnicity": "Hispanic or Latino",
            "payer": "Bad Plan"}))
    for i in range(30):  # everyone else: 0 of 10, spread over the other attributes
        recs.append(record(f"g{i}", unsupported=(0, 10), groups={
            "age_band": ["0-17", "18-44", "45-64", "65+"][i % 4], "sex": ["male", "female"][i % 2],
            "race": ["White", "Asian", "Other Race"][i % 3],
            "ethnicity": "Not Hispanic or Latino", "payer": ["Medicare", "Medicaid"][i % 2]}))
    out = breakdown(recs)
    bad = out["attributes"]["payer"]["Bad Plan"]["unsupported_final"]
    assert (bad["k"], bad["n"], bad["flag"]) == (80, 100, True)
    assert out["attributes"]["payer"]["Medicare"]["unsupported_final"]["flag"] is False
    flagged = {(f["attribute"], f["group"]) for f in out["flags"]
               if f["metric"] == "unsupported_final"}
    # the bad cases are also the only Hispanic or Latino ones, so ethnicity is flagged too
    assert ("payer", "Bad Plan") in flagged and ("ethnicity", "Hispanic or Latino") in flagged
    assert ("payer", "Medicare") not in flagged
    assert set(out["attributes"]) == {"age_band", "sex", "race", "ethnicity", "payer"}
