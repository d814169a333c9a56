"""Tests of geogrid.policy: the plan's defaults and the errors of a bad policy file."""
from __future__ import annotations

from pathlib import Path

import pytest

from geogrid.errors import InputError
from geogrid.policy import StaffingPolicy


def test_defaults_follow_the_plan():
    p = StaffingPolicy.default()
    assert p.minimums.urban_officers == 1 and p.minimums.rural_officers_or_auxiliaries == 1
    assert p.minimums.key_area_extra_auxiliaries == 1
    one = p.tier_staff("urban", 1)
    assert (one.officers, one.auxiliaries, one.grid_workers, one.volunteers) == (1, 3, 5, 10)  # Shenzhen 1+3+5+10
    assert (p.tier_staff("urban", 2).officers, p.tier_staff("urban", 2).auxiliaries) == (1, 2)  # Hangzhou
    assert (p.tier_staff("rural", 1).officers, p.tier_staff("rural", 1).auxiliaries) == (1, 2)
    assert p.workload.walking_hours_per_day == 3 and p.workload.rural_visits_per_week == 2
    assert p.workload.officer_hours_per_year == 2000
    assert (p.response.urgent_minutes, p.response.ordinary_minutes) == (15, 120)
    assert p.workload.hours("homicide") > p.workload.hours("theft")
    assert p.workload.hours("no_such_code") == p.workload.default_hours_per_incident


def test_file_overrides_defaults(tmp_path: Path):
    f = tmp_path / "p.toml"
    f.write_text("[workload]\nwalking_hours_per_day = 2.0\n[tiers.urban.1]\nauxiliaries = 4\n", encoding="utf-8")
    p = StaffingPolicy.from_file(f)
    assert p.workload.walking_hours_per_day == 2.0
    assert p.tier_staff("urban", 1).auxiliaries == 4 and p.tier_staff("urban", 1).officers == 1
    assert p.workload.rural_visits_per_week == 2  # untouched default


@pytest.mark.parametrize(
    ("text", "match"),
    [("[workload]\nwalk_hours = 3\n", "workload.walk_hours"),
     ("[bonus]\nx = 1\n", "bonus"),
     ("[minimums]\nurban_officers = -1\n", "minimums.urban_officers"),
     ("[minimums]\nurban_officers = 1.5\n", "minimums.urban_officers"),
     ("[workload]\nofficer_share_of_incidents = 1.5\n", "officer_share_of_incidents"),
     ("[workload.hours_per_incident]\ntheft = \"two\"\n", "workload.hours_per_incident.theft"),
     ("[tiers.urban.6]\nofficers = 1\nauxiliaries = 1\n", "tiers.urban.6"),
     ("[tiers.urban.5]\nofficers = 1\nauxiliaries = 1\n", "same tiers"),
     ("[tiers.urban.1]\nsergeants = 1\n", "tiers.urban.1.sergeants"),
     ("[minimums]\nkey_area_flags = \"old_compound\"\n", "key_area_flags"),
     ("not toml [", "not valid TOML")],
    ids=["unknown-key", "unknown-section", "negative", "not-integer", "share-above-1", "hours-not-number",
         "tier-gap", "tiers-differ", "unknown-tier-key", "flags-not-list", "bad-toml"])
def test_bad_file_names_the_key(tmp_path: Path, text, match):
    f = tmp_path / "p.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        StaffingPolicy.from_file(f)


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        StaffingPolicy.from_file(tmp_path / "none.toml")


def test_unknown_tier():
    with pytest.raises(InputError, match="tier 7"):
        StaffingPolicy.default().tier_staff("urban", 7)
