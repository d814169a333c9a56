"""Offline maps: Leaflet inlined, nothing loaded from the network, and a verifier that says so."""
from __future__ import annotations

import json
import re
from pathlib import Path

import folium
import pytest

from geogrid.errors import InputError
from maps.layers import hotspot_map
from maps.offline import (MAPS_DIR, NODE_MODULES, ExternalReferenceError, OfflineAssetsMissing, OfflineMapError,
                          check_offline, find_external_refs, offline_map, save_offline)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
BOUNDS = (-87.64, 41.87, -87.62, 41.89)

# Pages that each hold one network load, and the URL the verifier must name.
PLANTED = {
    "cdn-script": ('<script src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"></script>',
                   "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"),
    "protocol-relative-script": ("<script src='//code.jquery.com/jquery.js'></script>", "//code.jquery.com/jquery.js"),
    "stylesheet-link": ('<link rel="stylesheet" href="http://x.org/a.css"/>', "http://x.org/a.css"),
    "img": ('<img src="https://x.org/i.png">', "https://x.org/i.png"),
    "css-url": ("<style>.a{background:url('https://x.org/b.png')}</style>", "https://x.org/b.png"),
    "css-import": ('<style>@import "https://x.org/c.css";</style>', "https://x.org/c.css"),
    "style-attr": ('<div style="background: url(https://x.org/d.png)"></div>', "https://x.org/d.png"),
    "tile-template": ('<script>L.tileLayer("https://{s}.tile.osm.org/{z}/{x}/{y}.png").addTo(m)</script>',
                      "https://{s}.tile.osm.org/{z}/{x}/{y}.png"),
    "img-in-js-popup": ("<script>p.setContent('<img src=\"https://x.org/e.png\">')</script>", "https://x.org/e.png"),
}
# Strings that look like URLs but load nothing.
HARMLESS = [
    '<script>document.createElementNS("http://www.w3.org/2000/svg", "svg")</script>',
    '<a href="https://leafletjs.com">Leaflet</a>',
    "<div>数据来源 source: https://data.cityofchicago.org</div>",
    '<script>var prefix = \'<a href="https://leafletjs.com" title="x">Leaflet</a>\';</script>',
    '<img src="data:image/png;base64,iVBORw0KGgo=">',
]


@pytest.mark.parametrize("case", list(PLANTED), ids=list(PLANTED))
def test_verifier_names_each_planted_url(case):
    tag, url = PLANTED[case]
    html = f"<html><head>{tag}</head><body></body></html>"
    assert find_external_refs(html) == [url]
    with pytest.raises(ExternalReferenceError, match=re.escape(url)):
        check_offline(html)


@pytest.mark.parametrize("snippet", HARMLESS, ids=["svg-xmlns", "anchor", "text", "anchor-in-js", "data-uri"])
def test_verifier_ignores_strings_that_load_nothing(snippet):
    assert find_external_refs(f"<html><body>{snippet}</body></html>") == []


def test_save_offline_rejects_planted_cdn_script_and_removes_file(tmp_path):
    m = offline_map(bounds=BOUNDS)
    m.get_root().header.add_child(folium.JavascriptLink("https://cdn.example.com/evil.js"))
    path = tmp_path / "m.html"
    with pytest.raises(ExternalReferenceError, match="https://cdn.example.com/evil.js"):
        save_offline(m, path)
    assert not path.exists()


def test_plain_folium_map_fails_verification(tmp_path):
    """folium's defaults: CDN scripts and OpenStreetMap tiles."""
    with pytest.raises(ExternalReferenceError) as err:
        save_offline(folium.Map(location=[41.88, -87.63]), tmp_path / "m.html")
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in err.value.urls
    assert any("leaflet.js" in u for u in err.value.urls)


def test_offline_map_inlines_leaflet_and_its_images(tmp_path):
    path = save_offline(offline_map(bounds=BOUNDS), tmp_path / "m.html")
    html = path.read_text("utf-8")
    leaflet_js = (NODE_MODULES / "leaflet" / "dist" / "leaflet.js").read_text("utf-8")
    assert leaflet_js[:2000] in html
    assert "url(images/" not in html and "data:image/png;base64," in html
    assert "sourceMappingURL" not in html
    assert "<script src=" not in html and "<link " not in html
    assert "L.tileLayer" not in html


def test_jquery_popup_is_refused(tmp_path):
    """folium.Popup builds its content with jQuery, which offline maps do not ship."""
    m = offline_map(bounds=BOUNDS)
    folium.CircleMarker([41.88, -87.63], popup=folium.Popup("东风社区")).add_to(m)
    with pytest.raises(OfflineMapError, match="jQuery"):
        save_offline(m, tmp_path / "m.html")


def test_missing_node_modules_says_how_to_install(tmp_path):
    with pytest.raises(OfflineAssetsMissing, match="make maps-assets"):
        offline_map(bounds=BOUNDS, node_modules=tmp_path / "node_modules")


@pytest.mark.parametrize("kwargs", [{}, {"center": (30.25, 120.17)}, {"bounds": BOUNDS, "tiles": "OpenStreetMap"},
                                    {"bounds": (-87.62, 41.87, -87.64, 41.89)}],
                         ids=["nothing", "lat-lon-swapped-hangzhou", "tiles", "west-east-swapped"])
def test_offline_map_rejects_bad_arguments(kwargs):
    with pytest.raises(InputError):
        offline_map(**kwargs)


@pytest.mark.browser
def test_map_renders_in_headless_chromium_without_network(cells, grids, tmp_path):
    """Open a saved map from file:// and watch every request the page makes."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "install the browser with `apt-get install -y chromium`"
    path = tmp_path / "hotspots.html"
    hotspot_map(cells, path, grids=grids)
    locked = json.loads((MAPS_DIR / "package-lock.json").read_text())["packages"]["node_modules/leaflet"]
    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_selector("path.leaflet-interactive", timeout=10_000)
            version = page.evaluate("L.version")
            n_paths = page.evaluate("document.querySelectorAll('path.leaflet-interactive').length")
            legend = page.get_by_text("热点 99% 置信 / Hot spot 99% confidence", exact=True)
            legend_visible = legend.is_visible()
            page.locator("path.leaflet-interactive").nth(len(cells) // 2).hover(force=True)
            page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
            tooltip = page.inner_text(".leaflet-tooltip")
        finally:
            browser.close()
    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert outside == [], f"page requested the network: {outside}"
    assert errors == []
    assert version == locked["version"]  # the npm-locked Leaflet, not some other copy
    assert n_paths >= len(cells)
    assert legend_visible
    assert "类别 Class" in tooltip and "单元 Cell" in tooltip
