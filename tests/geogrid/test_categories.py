"""Tests for geogrid.categories: aliases, normalisation, Chicago coverage, extension files, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geogrid.categories import PRIORITIES, Category, CategoryMap
from geogrid.errors import InputError

CHICAGO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real" / "chicago"
CHICAGO_SAMPLE = CHICAGO / "converted" / "crimes_2019_sample50k.csv"
# Chicago primary types for which the catch-all is the right answer.
CHICAGO_OTHER = {"OTHER OFFENSE", "NON-CRIMINAL"}


@pytest.fixture(scope="module")
def cmap() -> CategoryMap:
    """The shipped default map."""
    return CategoryMap.default()


@pytest.fixture(scope="module")
def chicago_types() -> list[str]:
    """The distinct primary_type values of the real Chicago 2019 sample (31)."""
    return sorted(pd.read_csv(CHICAGO_SAMPLE, usecols=["primary_type"])["primary_type"].unique())


def map_one(cmap: CategoryMap, value: object) -> tuple[str, bool]:
    codes, unknown = cmap.map(pd.Series([value]))
    return codes.iloc[0], bool(unknown[0])


# --- defaults ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "code"),
    [("邻里纠纷", "neighbour_dispute"), ("盗窃", "theft"), ("电信诈骗", "telecom_fraud"),
     ("证件咨询", "service_id_certificate"), ("矛盾调解", "service_mediation"),
     ("隐患报告", "hazard_report"), ("殴打", "assault"), ("伤害", "assault"), ("抢劫", "robbery"),
     ("入室盗窃", "burglary"), ("家暴", "domestic_violence"), ("交通事故", "traffic_accident"),
     ("火灾", "fire"), ("走失", "missing_person"), ("其他", "other")],
    ids=lambda v: v,
)
def test_chinese_aliases(cmap, value, code):
    assert map_one(cmap, value) == (code, False)


@pytest.mark.parametrize(
    ("value", "code"),
    [("Neighbourhood dispute", "neighbour_dispute"), ("telecom fraud", "telecom_fraud"),
     ("aggravated assault", "assault"), ("13A", "assault"), ("burglary", "burglary"),
     ("Vehicle theft", "vehicle_theft"), ("murder", "homicide"), ("Public order", "public_order"),
     ("missing person", "missing_person"), ("Other", "other")],
    ids=lambda v: v,
)
def test_english_aliases_and_labels(cmap, value, code):
    assert map_one(cmap, value) == (code, False)


@pytest.mark.parametrize(
    "value",
    ["theft", "THEFT", "  Theft\t", "\u3000盗窃 ", "ＴＨＥＦＴ", "盗窃\n"],
    ids=["lower", "upper", "spaces-tab", "ideographic-space", "full-width", "newline"],
)
def test_case_and_whitespace_do_not_matter(cmap, value):
    assert map_one(cmap, value) == ("theft", False)


def test_inner_whitespace_collapsed(cmap):
    assert map_one(cmap, "motor   vehicle\ttheft") == ("vehicle_theft", False)


def test_unknown_and_missing_map_to_other_with_mask(cmap):
    values = pd.Series(["THEFT", "飞碟目击", None, np.nan, "", "BATTERY"], index=[10, 11, 12, 13, 14, 15])
    codes, unknown = cmap.map(values)
    assert codes.index.equals(values.index) and codes.name == "category"
    assert codes.tolist() == ["theft", "other", "other", "other", "other", "assault"]
    assert unknown.tolist() == [False, True, True, True, True, False]


def test_map_accepts_plain_lists_and_empty(cmap):
    codes, unknown = cmap.map(["盗窃", "抢劫"])
    assert codes.tolist() == ["theft", "robbery"] and not unknown.any()
    codes, unknown = cmap.map(pd.Series([], dtype="str"))
    assert len(codes) == 0 and unknown.shape == (0,)


def test_every_chicago_primary_type_maps(cmap, chicago_types):
    assert len(chicago_types) == 31
    codes, unknown = cmap.map(pd.Series(chicago_types))
    assert not unknown.any(), [t for t, u in zip(chicago_types, unknown) if u]
    wrongly_other = [t for t, c in zip(chicago_types, codes) if (c == "other") != (t in CHICAGO_OTHER)]
    assert wrongly_other == []


@pytest.mark.parametrize(
    ("primary_type", "code"),
    [("BATTERY", "assault"), ("ASSAULT", "assault"), ("MOTOR VEHICLE THEFT", "vehicle_theft"),
     ("DECEPTIVE PRACTICE", "fraud"), ("CRIM SEXUAL ASSAULT", "sexual_offence"),
     ("NARCOTICS", "drugs"), ("WEAPONS VIOLATION", "weapons"), ("BURGLARY", "burglary")],
    ids=lambda v: v,
)
def test_chicago_spot_checks(cmap, primary_type, code):
    assert map_one(cmap, primary_type) == (code, False)


def test_table_shape_and_defaults(cmap):
    frame = cmap.to_frame()
    assert frame.columns.tolist() == ["code", "zh", "en", "priority", "severity"]
    assert frame["code"].tolist() == list(cmap.codes) and frame["code"].is_unique
    assert set(frame["priority"]) <= set(PRIORITIES)
    assert (frame["severity"] >= 0).all()
    assert frame.loc[frame["severity"].idxmax(), "code"] == "homicide"
    assert cmap.priority("homicide") == "urgent" and cmap.priority("neighbour_dispute") == "normal"
    assert cmap.severity("homicide") > cmap.severity("assault") > cmap.severity("theft")


def test_labels(cmap):
    assert cmap.label("telecom_fraud") == "电信诈骗"
    assert cmap.label("telecom_fraud", "en") == "Telecom fraud"
    with pytest.raises(InputError, match="lang"):
        cmap.label("theft", "fr")
    with pytest.raises(InputError, match="known codes: neighbour_dispute"):
        cmap.label("ufo")


def test_conflicting_alias_rejected():
    with pytest.raises(InputError, match="maps to both"):
        CategoryMap([Category("other", "其他", "Other", aliases=("x",)),
                     Category("theft", "盗窃", "Theft", aliases=("X ",))])


# --- extension files -----------------------------------------------------------------------------

def test_csv_extends_defaults(tmp_path):
    """A local source list: one alias onto a default code, one new code with labels on its line."""
    path = tmp_path / "local.csv"
    path.write_text("source,code,zh,en,priority,severity\n"
                    "吵架,neighbour_dispute,,,,\n"
                    "无人机扰航,drone,无人机,Drone,urgent,3\n"
                    "drone sighting,drone,,,,\n", encoding="utf-8")
    cmap = CategoryMap.from_file(path)
    codes, unknown = cmap.map(pd.Series(["吵架", "无人机扰航", "Drone Sighting", "THEFT"]))
    assert codes.tolist() == ["neighbour_dispute", "drone", "drone", "theft"] and not unknown.any()
    assert cmap.label("drone", "en") == "Drone" and cmap.priority("drone") == "urgent"
    assert cmap.severity("drone") == 3.0
    assert len(cmap) == len(CategoryMap.default()) + 1


def test_csv_alias_moves_from_default_code(tmp_path):
    """The file wins over the defaults: '纠纷' is re-pointed to mediation."""
    path = tmp_path / "local.csv"
    path.write_text("source,code\n纠纷,service_mediation\n", encoding="utf-8")
    assert map_one(CategoryMap.from_file(path), "纠纷") == ("service_mediation", False)


def test_csv_gbk_with_bom_free_excel_encoding(tmp_path):
    """Excel in zh-CN saves CSV as GBK."""
    path = tmp_path / "gbk.csv"
    path.write_bytes("source,code\n扒手,theft\n".encode("gbk"))
    assert map_one(CategoryMap.from_file(path), "扒手") == ("theft", False)


def test_csv_new_code_without_labels_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("source,code\n吵架,neighbour_dispute\n无人机,drone\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.csv line 3: 'drone' is not a known category"):
        CategoryMap.from_file(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [("src,code\na,theft\n", "line 1: the header"), ("source,code\n,theft\n", "line 2"),
     ("source,code,zh,en,priority\nx,new_one,新,New,asap\n", "line 2: .*priority")],
    ids=["bad-header", "empty-source", "bad-priority"],
)
def test_csv_errors(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        CategoryMap.from_file(path)


def test_toml_extends_defaults(tmp_path):
    path = tmp_path / "local.toml"
    path.write_text('[categories.theft]\naliases = ["顺手牵羊"]\n\n'
                    '[categories.drone]\nzh = "无人机"\nen = "Drone"\naliases = ["uav"]\n',
                    encoding="utf-8")
    cmap = CategoryMap.from_file(path)
    assert map_one(cmap, "顺手牵羊") == ("theft", False)
    assert map_one(cmap, "THEFT") == ("theft", False)  # default aliases kept
    assert map_one(cmap, "UAV") == ("drone", False)
    assert cmap.priority("drone") == "normal" and cmap.severity("drone") == 1.0


def test_toml_new_code_without_labels_names_the_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('# local\n[categories.theft]\naliases = ["x1"]\n\n'
                    '[categories.drone]\naliases = ["uav"]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.toml line 5: new category 'drone' needs"):
        CategoryMap.from_file(path)


def test_toml_replacing_defaults_needs_other(tmp_path):
    path = tmp_path / "own.toml"
    path.write_text('[categories.theft]\nzh = "盗窃"\nen = "Theft"\n', encoding="utf-8")
    with pytest.raises(InputError, match="fallback code 'other'"):
        CategoryMap.from_file(path, extend=False)
    path.write_text(path.read_text(encoding="utf-8") + '[categories.other]\nzh = "其他"\nen = "Other"\n',
                    encoding="utf-8")
    assert CategoryMap.from_file(path, extend=False).codes == ("theft", "other")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [("x.toml", "categories = [", "not valid TOML"), ("x.json", "{}", ".toml or .csv"),
     ("x.toml", 'title = "no categories"\n', r"\[categories.<code>\]"),
     ("x.toml", '[categories.theft]\nseverity = -1\n', "severity must be a number >= 0")],
    ids=["invalid-toml", "wrong-suffix", "no-table", "negative-severity"],
)
def test_bad_files(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        CategoryMap.from_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        CategoryMap.from_file(tmp_path / "nope.csv")
