"""GDAL's OGC API – Features driver (a real third-party client) lists and reads the collections."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from sqlalchemy import text

from api.collections import COLLECTIONS

OGRINFO = shutil.which("ogrinfo") or "/usr/bin/ogrinfo"
pytestmark = pytest.mark.skipif(not shutil.which(OGRINFO), reason="gdal-bin is not installed (make sysdeps)")


def _ogrinfo(server: str, key: str, *args: str) -> str:
    out = subprocess.run([OGRINFO, "--config", "GDAL_HTTP_HEADERS", f"Authorization: Bearer {key}",
                          "--config", "GDAL_HTTP_TIMEOUT", "60", *args],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_ogrinfo_lists_every_collection(server, keys):
    out = _ogrinfo(server, keys["admin"], "-ro", "-so", f"OAPIF:{server}")
    layers = set(re.findall(r"^\d+: (\S+)", out, flags=re.M))
    assert layers == set(COLLECTIONS)


def test_ogrinfo_reads_every_grid_of_the_active_plan(server, keys, api_city):
    with api_city.connect() as conn:
        codes = sorted(r[0] for r in conn.execute(text(
            "SELECT code FROM grids WHERE plan_id = (SELECT id FROM plans WHERE status = 'active')")))
    summary = _ogrinfo(server, keys["viewer"], "-ro", "-so", f"OAPIF:{server}", "grids")
    assert f"Feature Count: {len(codes)}" in summary
    assert "population: Integer" in summary
    out = _ogrinfo(server, keys["viewer"], "-ro", "-q", f"OAPIF:{server}", "grids")
    assert out.count("OGRFeature(grids)") == len(codes)  # GDAL followed every next link
    assert sorted(re.findall(r"^\s+code \(String\) = (\S+)", out, flags=re.M)) == codes
    assert out.count("MULTIPOLYGON") == len(codes)


def test_ogrinfo_attribute_filter_matches_sql(server, keys, api_city):
    with api_city.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM grids WHERE plan_id = (SELECT id FROM plans WHERE "
                              "status = 'active') AND kind = 'urban' AND population > 3000")).scalar()
    out = _ogrinfo(server, keys["viewer"], "-ro", "-q", f"OAPIF:{server}", "grids",
                   "-where", "kind = 'urban' AND population > 3000")
    assert n > 0 and out.count("OGRFeature(grids)") == n
