"""The web map at /map in headless Chromium (Debian's, through Playwright) against the live server.

Every page is watched for failed requests, HTTP errors, console errors, uncaught exceptions and requests
leaving the server (no CDN, no base map). Edits are made with the mouse on leaflet-geoman's vertex
handles and read back from the database.
"""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "api" / "static" / "map"
CHROMIUM = "/usr/bin/chromium"
# every collection the commander view offers, and the ones drawn when the page opens
LAYERS = {"hotspots", "emerging", "forecasts", "forecast-grids", "tiers", "staffing", "beats", "coverage",
          "coverage-cells", "incidents", "siting", "roads", "grids", "posts"}
DEFAULT_ON = {"roads", "grids", "posts", "hotspots"}
TIMEOUT_MS = 90_000

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not (ASSETS / "index.html").is_file():
        pytest.fail(f"the web map is not built ({ASSETS}): run `make maps-assets`")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make sysdeps` (Debian's chromium; never a downloaded one)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Watched:
    """A page and everything that went wrong on it."""

    def __init__(self, page, base: str):
        self.page, self.base, self.problems, self.urls = page, base, [], []
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))

    def state(self, path: str = ""):
        return self.page.evaluate(f"() => window.geogrid.state{path}")

    def wait(self, predicate: str) -> None:
        # a function, not a string: the page's CSP forbids eval
        self.page.wait_for_function(f"() => {predicate}", timeout=TIMEOUT_MS)

    def idle(self) -> None:
        self.wait("window.geogrid.state.ready && window.geogrid.state.loading === 0")

    def clean(self, allow: tuple[str, ...] = ()) -> None:
        """No problem besides those naming one of ``allow``; no request left the server."""
        problems = [p for p in self.problems if not any(a in p for a in allow)]
        assert problems == [], problems
        foreign = [u for u in self.urls if not (u.startswith(self.base) or u.startswith("data:"))]
        assert foreign == [], f"requests outside the server: {foreign}"


@pytest.fixture
def open_map(browser, server, keys):
    """``open_map(role, view)`` → a Watched page of /map, opened with the role's key in ``?key=``."""
    contexts = []

    def _open(role: str = "admin", view: str = "commander") -> Watched:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        contexts.append(ctx)
        w = Watched(ctx.new_page(), server)
        w.page.goto(f"{server}/map?key={keys[role]}&view={view}")
        w.idle()
        return w

    yield _open
    for ctx in contexts:
        ctx.close()


def _count(engine, sql: str, **binds) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), binds).scalar())


def _latest_run(engine, kind: str) -> int:
    return _count(engine, "SELECT max(id) FROM analysis_runs WHERE kind = :k AND finished_at IS NOT NULL", k=kind)


# --- served files ---------------------------------------------------------------------------------

def test_page_and_assets_are_served_without_a_key(server):
    page = httpx.get(f"{server}/map")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/map/static/app.js" in page.text and "%BASE%" not in page.text
    js = httpx.get(f"{server}/map/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    css = httpx.get(f"{server}/map/static/style.css")
    assert css.status_code == 200 and ".leaflet-pane" in css.text and ".leaflet-pm-toolbar" in css.text
    assert httpx.get(f"{server}/map/static/images/layers.png").status_code == 200
    again = httpx.get(f"{server}/map/static/app.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["../webmap.py", "..%2F..%2Fapp.py", "%2e%2e/%2e%2e/app.py", "nope.js"],
                         ids=["dotdot", "encoded", "encoded-dots", "missing"])
def test_asset_paths_stay_inside_the_bundle(server, path):
    r = httpx.get(f"{server}/map/static/{path}")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_page_data_needs_a_key(server, auth):
    for path in ("/map/legends.json", "/map/context.json"):
        assert httpx.get(server + path).status_code == 401
    viewer = httpx.get(server + "/map/context.json", headers=auth("viewer")).json()
    assert viewer["role"] == "viewer" and not viewer["can_write"] and not viewer["raw_incidents"]


def test_legends_come_from_the_palettes(client):
    from maps import palettes as pal

    legends = client.get("/map/legends.json").json()
    hot = {c["key"]: c for c in legends["hotspots"]["classes"]}
    assert {k: (c["color"], c["zh"], c["en"]) for k, c in hot.items()} == {
        k: (r.color, r.label_zh, r.label_en) for k, r in pal.GI_BINS.items()}
    assert [c["key"] for c in legends["emerging"]["classes"]] == list(pal.EMERGING)
    assert legends["forecasts"]["ramp"] == list(pal.RISK)
    assert set(LAYERS) <= set(legends["titles"])


def test_missing_assets_answer_503_naming_the_command(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    import api.webmap
    from api.app import create_app
    from geogrid.settings import Settings

    monkeypatch.setattr(api.webmap, "ASSETS", tmp_path / "not-built")
    monkeypatch.setenv("GEOGRID_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")  # never reached
    app = create_app(Settings(environment="development"))
    with TestClient(app) as c:
        for path in ("/map", "/map/static/app.js"):
            r = c.get(path)
            assert r.status_code == 503, path
            assert r.headers["content-type"] == "application/problem+json"
            assert "make maps-assets" in r.json()["detail"]


# --- commander view -------------------------------------------------------------------------------

def test_page_loads_clean_and_draws_the_default_layers(open_map, api_city):
    w = open_map("admin")
    w.clean()
    listed = set(w.page.eval_on_selector_all("#layer-list input[name=layer]", "els => els.map(e => e.value)"))
    assert listed == LAYERS
    checked = set(w.page.eval_on_selector_all("#layer-list input[name=layer]:checked", "els => els.map(e => e.value)"))
    assert checked == DEFAULT_ON
    layers = w.state(".layers")
    plan_grids = _count(api_city, "SELECT count(*) FROM grids g JOIN plans p ON p.id = g.plan_id "
                                  "WHERE p.status = 'active'")
    assert layers["grids"]["count"] == plan_grids > 0
    assert layers["posts"]["count"] == _count(api_city, "SELECT count(*) FROM posts") > 0
    assert layers["hotspots"]["count"] == _count(api_city, "SELECT count(*) FROM hotspot_cells WHERE run_id = :r",
                                                 r=_latest_run(api_city, "hotspots")) > 0
    # drawn, not only fetched: grid outlines are SVG paths, posts circle markers in their pane
    assert w.page.locator(".leaflet-outline-pane path").count() == plan_grids
    assert w.page.locator(".leaflet-points-pane path").count() == layers["posts"]["count"]
    assert w.page.locator(".leaflet-thematic-pane canvas").count() >= 1
    assert w.page.locator("#role").inner_text() == "admin"
    # the key given in ?key= is stored and removed from the address bar
    assert "key=" not in w.page.url
    assert w.page.evaluate("() => localStorage.getItem('geogrid.apiKey')") == "admin-key-0123456789"


def test_every_layer_draws_what_the_database_holds(open_map, api_city):
    w = open_map("admin")
    for layer in sorted(LAYERS - DEFAULT_ON):
        w.page.locator(f"#layer-list input[value={layer}]").check()
    w.wait(f"Object.keys(window.geogrid.state.layers).length === {len(LAYERS)}")
    w.idle()
    w.clean()
    layers = w.state(".layers")
    tables = {"emerging": "emerging_cells", "tiers": "grid_tiers", "staffing": "grid_staffing", "beats": "beats",
              "coverage": "coverage_grids", "coverage-cells": "coverage_cells", "siting": "siting_proposals"}
    kinds = {"coverage-cells": "coverage"}
    for layer, table in tables.items():
        run = _latest_run(api_city, kinds.get(layer, layer))
        stored = _count(api_city, f"SELECT count(*) FROM {table} WHERE run_id = :r", r=run)  # table: from above
        assert layers[layer]["count"] == stored > 0, layer
    # forecasts overlap per horizon: one horizon (the shortest) is shown at a time
    run = _latest_run(api_city, "forecast")
    horizon = _count(api_city, "SELECT min(horizon_days) FROM forecast_cells WHERE run_id = :r", r=run)
    assert layers["forecasts"]["query"]["filter"].startswith(f"horizon_days = {horizon}")
    assert layers["forecasts"]["count"] == _count(
        api_city, "SELECT count(*) FROM forecast_cells WHERE run_id = :r AND horizon_days = :h", r=run, h=horizon) > 0
    legend = w.page.locator("[data-testid=legend]").inner_text()
    for title in ("新兴热点", "网格等级", "警力配置", "网格响应覆盖", "拟建警务室（选址）", "道路"):
        assert title in legend
    # the background is geogrid's own road network, every road of it
    assert layers["roads"]["count"] == _count(api_city, "SELECT count(*) FROM roads") > 0


def test_time_window_and_category_filter_the_incidents(open_map, api_city):
    w = open_map("commander")
    category = w.page.evaluate("() => window.geogrid.context.categories[0].code")
    w.page.locator("#layer-list input[value=incidents]").check()
    w.wait("window.geogrid.state.layers.incidents")
    w.page.fill("#f-from", "2025-02-01")
    w.page.fill("#f-to", "2025-02-14")
    w.page.select_option("#f-category", category)
    w.page.click("#f-apply")
    w.wait("(window.geogrid.state.layers.incidents.query.filter || '').includes('category')")
    w.idle()
    w.clean()
    shown = w.state(".layers.incidents")
    assert shown["query"]["datetime"] == "2025-02-01T00:00:00Z/2025-02-14T23:59:59Z"
    expected = _count(api_city, "SELECT count(*) FROM incidents WHERE category = :c AND occurred_at "
                                "BETWEEN '2025-02-01T00:00:00Z' AND '2025-02-14T23:59:59Z'", c=category)
    assert shown["count"] == expected > 0
    total = _count(api_city, "SELECT count(*) FROM incidents")
    assert expected < total


def test_language_toggle_changes_the_legend(open_map):
    w = open_map("viewer")
    legend = w.page.locator("[data-testid=legend]")
    zh = legend.inner_text()
    assert "热点 99% 置信" in zh and "Hot spot 99% confidence" not in zh
    assert w.page.locator("#layer-list").inner_text().count("热点与冷点") == 1
    w.page.click("#lang")
    en = legend.inner_text()
    assert "Hot spot 99% confidence" in en and "热点 99% 置信" not in en
    assert "Hot and cold spots (Gi*)" in w.page.locator("#layer-list").inner_text()
    assert w.page.locator("#lang").inner_text() == "中文"
    assert w.page.evaluate("() => document.documentElement.lang") == "en"
    w.page.click("#lang")
    assert legend.inner_text() == zh
    w.clean()


# --- planner view ---------------------------------------------------------------------------------

def _new_draft(w: Watched, name: str) -> int:
    w.page.fill("#draft-name", name)
    w.page.click("#draft-new")
    w.wait(f"window.geogrid.state.planner.plan && window.geogrid.state.planner.plan.name === {json.dumps(name)}")
    w.idle()
    return w.state(".planner.plan.id")


def _drag_first_vertex(w: Watched, code: str, dx: int = 10, dy: int = 7) -> None:
    """Select ``code``, switch leaflet-geoman's vertex editing on and drag a vertex with the mouse."""
    w.page.evaluate("(c) => window.geogrid.planner.select(c)", code)
    w.wait(f"window.geogrid.planner.etags.has({json.dumps(code)})")
    w.page.click("#t-edit")
    w.wait(f"window.geogrid.state.planner.editing === {json.dumps(code)}")
    # the first vertex handle not hidden under a control (the one the mouse would really grab)
    x, y = w.page.evaluate("""() => {
        for (const el of document.querySelectorAll('.marker-icon:not(.marker-icon-middle)')) {
            const r = el.getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            if (document.elementFromPoint(x, y) === el) return [x, y];
        }
        return null;
    }""")
    # Alt held: no snapping (the neighbour's copy of this shared vertex would pull it back)
    w.page.keyboard.down("Alt")
    w.page.mouse.move(x, y)
    w.page.mouse.down()
    w.page.mouse.move(x + dx / 2, y + dy / 2, steps=4)
    w.page.mouse.move(x + dx, y + dy, steps=4)
    w.page.mouse.up()
    w.page.keyboard.up("Alt")


def _grid(engine, plan: int, code: str):
    with engine.connect() as conn:
        return conn.execute(text("SELECT version, ST_AsGeoJSON(geom) AS geojson, geom FROM grids "
                                 "WHERE plan_id = :p AND code = :c"), {"p": plan, "c": code}).one()


def test_a_vertex_moved_in_the_page_round_trips_to_the_database(open_map, api_city):
    w = open_map("planner", "planner")
    plan = _new_draft(w, "webmap-edit")
    code = w.page.evaluate("() => [...window.geogrid.planner.grids.keys()].sort()[10]")
    before = _grid(api_city, plan, code)
    _drag_first_vertex(w, code)
    page_geom = w.page.evaluate("(c) => window.geogrid.planner.geometry(c)", code)
    # degrees of longitude per screen pixel at the zoom the edit was made
    per_px = w.page.evaluate("() => { const m = window.geogrid.map; "
                             "return m.containerPointToLatLng([1, 0]).lng - m.containerPointToLatLng([0, 0]).lng; }")
    w.page.click("#t-save")
    w.wait("window.geogrid.state.planner.lastSave")
    w.clean()
    saved = w.state(".planner.lastSave")
    assert saved["status"] == "saved" and saved["code"] == code
    after = _grid(api_city, plan, code)
    assert after.version == before.version + 1 == saved["version"]
    assert saved["etag"] == f'"{after.version}"'
    with api_city.connect() as conn:
        moved, same_as_page, history = conn.execute(text(
            # the vertex dragged by 10 × 7 pixels moved more than 5 pixels; a round trip of the old
            # geometry through GeoJSON would differ by rounding only (under 1e-6°, a tenth of a pixel here)
            "SELECT ST_HausdorffDistance(CAST(:a AS geometry), CAST(:b AS geometry)) > :five_px, "
            "ST_HausdorffDistance(CAST(:b AS geometry), ST_SetSRID(ST_GeomFromGeoJSON(:page), 4326)) < 1e-9, "
            "(SELECT action FROM grid_history WHERE plan_id = :p AND code = :c ORDER BY version DESC LIMIT 1)"),
            {"a": before.geom, "b": after.geom, "page": json.dumps(page_geom), "p": plan, "c": code,
             "five_px": 5 * per_px}).one()
    assert moved, "the saved geometry is the old one"
    assert same_as_page, "the database holds another geometry than the page drew"
    assert history == "update"
    # the page's layer now holds the saved version (the next edit sends its ETag)
    assert w.page.evaluate("(c) => window.geogrid.planner.etags.get(c)", code) == f'"{after.version}"'
    # the history lists the edit first (newest first), by the planner's key
    w.page.click("#t-history")
    w.wait("window.geogrid.state.planner.history")
    first = w.page.locator("#planner-out tbody tr").first.inner_text().split("\t")
    assert first[2:5] == ["update", code, str(after.version)] and first[1].startswith("key-")


def test_a_stale_save_shows_the_conflict_and_loses_nothing(open_map, api_city, client):
    w = open_map("planner", "planner")
    plan = _new_draft(w, "webmap-conflict")
    code = w.page.evaluate("() => [...window.geogrid.planner.grids.keys()].sort()[20]")
    _drag_first_vertex(w, code)  # the page holds the grid's ETag from before the other edit
    other = client.get(f"/plans/{plan}/grids/{code}")
    won = client.put(f"/plans/{plan}/grids/{code}",
                     json={"type": "Feature", "geometry": None, "properties": {"name": "edited elsewhere"}},
                     headers={"If-Match": other.headers["etag"]})
    assert won.status_code == 200, won.text
    w.page.click("#t-save")
    w.wait("window.geogrid.state.planner.lastSave")
    assert w.state(".planner.lastSave.status") == "conflict"
    assert "412" in w.page.locator("#status").inner_text()
    # the refused PUT, and only it (Chromium also logs it as a console error)
    w.clean(allow=(f"HTTP 412: {w.base}/plans/{plan}/grids/{code}", "status of 412"))
    with api_city.connect() as conn:
        version, name = conn.execute(text("SELECT version, name FROM grids WHERE plan_id = :p AND code = :c"),
                                     {"p": plan, "c": code}).one()
    assert (version, name) == (won.json()["properties"]["version"], "edited elsewhere")


def test_validate_draws_the_problems_an_edit_made(open_map, api_city, auth):
    w = open_map("planner", "planner")
    plan = _new_draft(w, "webmap-validate")
    w.page.click("#t-validate")
    w.wait("window.geogrid.state.planner.problems !== null")
    assert w.state(".planner.problems") == 0
    code = w.page.evaluate("() => [...window.geogrid.planner.grids.keys()].sort()[30]")
    _drag_first_vertex(w, code)  # a shared vertex moved: an overlap and a gap with the neighbours
    w.page.click("#t-save")
    w.wait("window.geogrid.state.planner.lastSave")
    w.page.click("#t-validate")
    w.wait("window.geogrid.state.planner.problems > 0")
    w.clean()
    listed = w.page.locator("#planner-out li.problem")
    n = w.state(".planner.problems")
    assert listed.count() == n
    assert code in w.page.locator("#planner-out").inner_text()
    assert w.page.locator(".leaflet-problems-pane path").count() >= 1
    api_problems = httpx.get(f"{w.base}/plans/{plan}/validate", headers=auth("planner")).json()["problems"]
    assert len(api_problems) == n  # the page shows what the API says
    # activating the invalid draft is refused (409) and its problems shown; it stays a draft
    w.page.click("#t-activate")
    w.wait("document.querySelector('#status').textContent.includes('problem')")
    assert listed.count() == n
    w.clean(allow=(f"HTTP 409: {w.base}/plans/{plan}/activate", "status of 409"))
    assert _count(api_city, "SELECT count(*) FROM plans WHERE id = :p AND status = 'draft'", p=plan) == 1
    # the preview compares the draft with the active plan and names the redrawn grid
    w.page.click("#t-preview")
    w.wait("window.geogrid.state.planner.preview")
    out = w.page.locator("#planner-out").inner_text()
    assert "tiers.grids" in out and "coverage.mean_minutes" in out
    assert any(line.startswith("grids.redrawn") and code in line for line in out.splitlines())


def test_viewer_cannot_edit(open_map):
    w = open_map("viewer", "planner")
    w.clean()
    assert w.page.locator("#t-save").is_disabled()
    assert w.page.locator("#draft-new").is_disabled()


def _screen(w: Watched, lon: float, lat: float) -> tuple[float, float]:
    """Page coordinates of a map position."""
    return tuple(w.page.evaluate("""([lon, lat]) => {
        const p = window.geogrid.map.latLngToContainerPoint([lat, lon]);
        const r = document.getElementById('map').getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""", [lon, lat]))


def test_a_line_drawn_in_the_page_splits_the_grid(open_map, api_city):
    w = open_map("planner", "planner")
    plan = _new_draft(w, "webmap-split")
    with api_city.connect() as conn:  # a large grid, cut north-south through its centroid
        code, x, y0, y1 = conn.execute(text(
            "SELECT code, ST_X(ST_Centroid(geom)), ST_YMin(geom), ST_YMax(geom) FROM grids WHERE plan_id = :p "
            "ORDER BY ST_Area(geom) DESC, code LIMIT 1"), {"p": plan}).one()
    n_before = _count(api_city, "SELECT count(*) FROM grids WHERE plan_id = :p", p=plan)
    w.page.evaluate("(c) => window.geogrid.planner.select(c)", code)
    w.page.click("#t-split")
    w.wait("window.geogrid.state.planner.mode === 'split'")
    pad = (y1 - y0) * 0.15
    (ax, ay), (bx, by) = _screen(w, x, y1 + pad), _screen(w, x, y0 - pad)
    w.page.mouse.click(ax, ay)
    w.page.mouse.dblclick(bx, by)
    w.wait("window.geogrid.state.planner.lastChange")
    w.idle()
    w.clean()
    change = w.state(".planner.lastChange")
    assert change["action"] == "split" and change["code"] == code and len(change["into"]) == 2
    assert _count(api_city, "SELECT count(*) FROM grids WHERE plan_id = :p", p=plan) == n_before + 1
    assert w.state(".planner.grids") == n_before + 1
    with api_city.connect() as conn:
        west, east = conn.execute(text(
            "SELECT ST_XMax(geom) FROM grids WHERE plan_id = :p AND code = ANY(:c) ORDER BY ST_XMin(geom)"),
            {"p": plan, "c": change["into"]}).scalars()
    assert west == pytest.approx(x, abs=2e-4)  # the parts meet on the line drawn (to a pixel or two)


def test_grids_selected_in_the_page_merge(open_map, api_city):
    w = open_map("planner", "planner")
    plan = _new_draft(w, "webmap-merge")
    with api_city.connect() as conn:  # two grids sharing an edge
        a, b = conn.execute(text(
            "SELECT a.code, b.code FROM grids a JOIN grids b ON a.plan_id = b.plan_id AND a.code < b.code "
            "AND ST_Relate(a.geom, b.geom, 'F***1****') WHERE a.plan_id = :p ORDER BY a.code, b.code LIMIT 1"),
            {"p": plan}).one()
        area = conn.execute(text("SELECT sum(ST_Area(geom::geography)) FROM grids WHERE plan_id = :p "
                                 "AND code IN (:a, :b)"), {"p": plan, "a": a, "b": b}).scalar()
    w.page.evaluate("([a, b]) => window.geogrid.planner.select(a).then(() => window.geogrid.planner.select(b, true))",
                    [a, b])
    w.wait("window.geogrid.state.planner.selection.length === 2")
    assert w.page.locator("#selection").inner_text() == f"{a}, {b}"
    w.page.click("#t-merge")
    w.wait("window.geogrid.state.planner.lastChange")
    w.idle()
    w.clean()
    assert w.state(".planner.lastChange") == {"action": "merge", "codes": [a, b], "into": a}
    with api_city.connect() as conn:
        codes = set(conn.execute(text("SELECT code FROM grids WHERE plan_id = :p AND code IN (:a, :b)"),
                                 {"p": plan, "a": a, "b": b}).scalars())
        merged = conn.execute(text("SELECT ST_Area(geom::geography) FROM grids WHERE plan_id = :p AND code = :a"),
                              {"p": plan, "a": a}).scalar()
    assert codes == {a}
    assert merged == pytest.approx(area, rel=1e-6)


def test_a_polygon_drawn_in_the_page_becomes_a_new_grid(open_map, api_city):
    w = open_map("planner", "planner")
    plan = _new_draft(w, "webmap-draw")
    with api_city.connect() as conn:  # a square east of the plan, beyond snapping distance of its vertices
        x1, ymid = conn.execute(text("SELECT ST_XMax(ST_Extent(geom)), (ST_YMin(ST_Extent(geom)) + "
                                     "ST_YMax(ST_Extent(geom))) / 2 FROM grids WHERE plan_id = :p"), {"p": plan}).one()
    w.page.fill("#grid-code", "NEW-1")
    w.page.click("#t-draw")
    w.wait("window.geogrid.state.planner.mode === 'new'")
    d = 0.005
    corners = [(x1 + 3 * d, ymid - d), (x1 + 5 * d, ymid - d), (x1 + 5 * d, ymid + d), (x1 + 3 * d, ymid + d)]
    points = [_screen(w, *c) for c in corners]
    for px, py in [*points, points[0]]:  # clicking the first vertex again closes the polygon
        w.page.mouse.click(px, py)
    w.wait("window.geogrid.planner.grids.has('NEW-1')")
    w.idle()
    w.clean()
    with api_city.connect() as conn:
        version, box = conn.execute(text(
            "SELECT version, ARRAY[ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)] FROM grids "
            "WHERE plan_id = :p AND code = 'NEW-1'"), {"p": plan}).one()
    assert version == 1
    # drawn with the mouse: the corners land within about two pixels (0.0004° at this zoom) of the intended ones
    assert box == pytest.approx([x1 + 3 * d, ymid - d, x1 + 5 * d, ymid + d], abs=8e-4)


def test_a_grid_deleted_in_the_page_is_restored_from_its_history(open_map, api_city):
    w = open_map("planner", "planner")
    plan = _new_draft(w, "webmap-delete")
    code = w.page.evaluate("() => [...window.geogrid.planner.grids.keys()].sort()[40]")
    before = _grid(api_city, plan, code)
    w.page.evaluate("(c) => window.geogrid.planner.select(c)", code)
    w.wait(f"window.geogrid.planner.etags.has({json.dumps(code)})")
    w.page.click("#t-delete")
    w.wait("window.geogrid.state.planner.lastChange")
    assert w.state(".planner.lastChange") == {"action": "delete", "codes": [code]}
    assert not w.page.evaluate("(c) => window.geogrid.planner.grids.has(c)", code)
    with api_city.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grids WHERE plan_id = :p AND code = :c"),
                            {"p": plan, "c": code}).scalar() == 0
    # newest first: the removal (nothing to restore), then the version it removed, with a restore button
    w.page.click("#t-history")
    w.wait("window.geogrid.state.planner.history")
    rows = w.page.locator("#planner-out tbody tr")
    assert rows.nth(0).inner_text().split("\t")[2:4] == ["delete", code]
    assert rows.nth(0).locator("button.restore").count() == 0
    kept = rows.filter(has_text=code).filter(has=w.page.locator("button.restore")).first
    assert kept.inner_text().split("\t")[4] == str(before.version)
    kept.locator("button.restore").click()
    w.wait("window.geogrid.state.planner.lastChange.action === 'restore'")
    w.idle()
    w.clean()
    assert w.page.evaluate("(c) => window.geogrid.planner.grids.has(c)", code)
    after = _grid(api_city, plan, code)
    with api_city.connect() as conn:
        same = conn.execute(text("SELECT ST_Equals(CAST(:a AS geometry), CAST(:b AS geometry))"),
                            {"a": before.geom, "b": after.geom}).scalar()
        last = conn.execute(text("SELECT action FROM grid_history WHERE plan_id = :p AND code = :c "
                                 "ORDER BY id DESC LIMIT 1"), {"p": plan, "c": code}).scalar()
    assert same and last == "restore"

