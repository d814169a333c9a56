// Commander view: geogrid's own layers over the grid outlines and posts (no base map), with filters.
import L from "./leaflet-global.js";
import { ApiError, features } from "./api.js";
import { lang, onLang, pick, t } from "./i18n.js";
import { styler } from "./styles.js";

// Layers the switcher offers, bottom to top; `run` = the analysis kind whose runs the layer can pick.
export const LAYERS = [
  { id: "roads", base: true },
  { id: "hotspots", run: "hotspots" },
  { id: "emerging", run: "emerging" },
  { id: "forecasts", run: "forecast" },
  { id: "forecast-grids", run: "forecast" },
  { id: "tiers", run: "tiers" },
  { id: "staffing", run: "staffing" },
  { id: "beats", run: "beats" },
  { id: "coverage", run: "coverage" },
  { id: "coverage-cells", run: "coverage" },
  { id: "incidents" },
  { id: "siting", run: "siting" },
  { id: "grids", base: true },
  { id: "posts", base: true },
];
const DEFAULT_ON = new Set(["roads", "grids", "posts", "hotspots"]);
const DAY = 86400000;

/** CQL2 text literal (single quotes doubled): user values never reach SQL, but must reach CQL2 intact. */
const cqlString = (s) => `'${String(s).replace(/'/g, "''")}'`;
const isoDay = (d) => new Date(d).toISOString().slice(0, 10);

export class Commander {
  constructor(map, legend, legends, context, state, notify) {
    Object.assign(this, { map, legend, legends, context, state, notify });
    this.layers = new Map();
    map.createPane("roads").style.zIndex = 405; // the background: under every thematic layer
    map.createPane("thematic").style.zIndex = 410;
    map.createPane("outline").style.zIndex = 450;
    map.createPane("points").style.zIndex = 620;
    this.canvas = L.canvas({ pane: "thematic", padding: 0.3 });
    this.roadRenderer = L.canvas({ pane: "roads", padding: 0.3 });
    this.outlineRenderer = L.svg({ pane: "outline" });
    this.filters = this.defaultFilters();
    this.visible = true;
    onLang(() => this.refreshLegend());
    // a layer cut at the feature cap is reloaded for the visible extent when the view moves
    map.on("moveend", () => {
      if (!this.visible) return;
      for (const [id, entry] of this.layers) if (entry.truncated) this.load(id).catch((e) => this.fail(e));
    });
  }

  /** Horizons and methods of the forecast runs (one of each is shown at a time: they overlap). */
  forecastChoices() {
    const runs = this.context.runs?.forecast ?? [];
    const horizons = [...new Set(runs.flatMap((r) => r.params?.horizons ?? []))].sort((a, b) => a - b);
    const methods = [...new Set(runs.flatMap((r) => r.params?.methods ?? []))];
    return { horizons, methods };
  }

  defaultFilters() {
    const to = this.context.incidents?.to;
    const { horizons, methods } = this.forecastChoices();
    return {
      from: to ? isoDay(new Date(to).getTime() - 27 * DAY) : "",
      to: to ? isoDay(to) : "",
      category: "",
      significant: false,
      flagged: false,
      horizon: horizons.length ? String(horizons[0]) : "",
      method: methods.length ? methods[0] : "",
      runs: {},
    };
  }

  /** Build the switcher and filter panel into `panel`, then draw the default layers. */
  async mount(panel) {
    this.panel = panel;
    const list = panel.querySelector("#layer-list");
    for (const def of LAYERS.slice().reverse()) {
      const row = document.createElement("label");
      row.className = "layer-row";
      row.dataset.layer = def.id;
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "layer";
      box.value = def.id;
      box.checked = DEFAULT_ON.has(def.id);
      box.addEventListener("change", () => this.toggle(def.id, box.checked).catch((e) => this.fail(e)));
      const name = document.createElement("span");
      name.className = "layer-name";
      const count = document.createElement("span");
      count.className = "count";
      row.append(box, name, count);
      list.append(row);
    }
    this.buildFilters(panel.querySelector("#filters"));
    this.relabel();
    onLang(() => this.relabel());
  }

  /** Load the ticked layers not loaded yet (the default ones on the first show). */
  async loadTicked() {
    const ids = LAYERS.map((d) => d.id).filter((id) => this._wanted(id) && !this.layers.has(id));
    await Promise.all(ids.map((id) => this.load(id)));
  }

  relabel() {
    this.panel.querySelectorAll(".layer-row").forEach((row) => {
      row.querySelector(".layer-name").textContent = pick(this.legends.titles[row.dataset.layer]);
    });
    this.panel.querySelectorAll("#f-horizon, #f-method").forEach((s) => (s.options[0].textContent = t("all")));
    const cat = this.panel.querySelector("#f-category");
    if (cat) {
      cat.options[0].textContent = t("all");
      [...cat.options].slice(1).forEach((o, i) => {
        const c = this.context.categories[i];
        o.textContent = lang() === "zh" ? c.zh : c.en;
      });
    }
    this.panel.querySelectorAll("select.run").forEach((sel) => {
      sel.options[0].textContent = t("latest");
      sel.previousSibling.textContent = `${t("run")} · ${sel.dataset.kind}`;
    });
  }

  buildFilters(box) {
    const f = this.filters;
    const field = (key, el) => {
      const wrap = document.createElement("label");
      wrap.className = "field";
      const span = document.createElement("span");
      span.dataset.i18n = key;
      span.textContent = t(key);
      wrap.append(span, el);
      box.append(wrap);
      return el;
    };
    const input = (type, id, value) => Object.assign(document.createElement("input"), { type, id, value });
    const from = field("from", input("date", "f-from", f.from));
    const to = field("to", input("date", "f-to", f.to));
    const cat = field("category", document.createElement("select"));
    cat.id = "f-category";
    cat.append(new Option(t("all"), ""));
    for (const c of this.context.categories || []) cat.append(new Option(lang() === "zh" ? c.zh : c.en, c.code));
    const sig = field("significant", input("checkbox", "f-significant"));
    const flagged = field("flagged", input("checkbox", "f-flagged"));
    const { horizons, methods } = this.forecastChoices();
    const horizon = field("horizon", document.createElement("select"));
    horizon.id = "f-horizon";
    horizon.append(new Option(t("all"), ""), ...horizons.map((h) => new Option(String(h), String(h))));
    horizon.value = f.horizon;
    const method = field("method", document.createElement("select"));
    method.id = "f-method";
    method.append(new Option(t("all"), ""), ...methods.map((m) => new Option(m, m)));
    method.value = f.method;
    const runSelects = {};
    for (const [kind, runs] of Object.entries(this.context.runs || {})) {
      if (runs.length < 2) continue; // nothing to choose
      const sel = field("run", document.createElement("select"));
      sel.className = "run";
      sel.dataset.kind = kind;
      delete sel.previousSibling.dataset.i18n; // labelled in relabel()
      sel.append(new Option(t("latest"), ""));
      for (const r of runs) {
        const window = r.data_from ? `${isoDay(r.data_from)}–${isoDay(r.data_to)}` : isoDay(r.finished_at);
        sel.append(new Option(`#${r.id} ${window}`, r.id));
      }
      runSelects[kind] = sel;
    }
    const apply = document.createElement("button");
    apply.type = "button";
    apply.id = "f-apply";
    apply.dataset.i18n = "apply";
    apply.textContent = t("apply");
    apply.addEventListener("click", () => this.setFilters({
      from: from.value, to: to.value, category: cat.value, significant: sig.checked, flagged: flagged.checked,
      horizon: horizon.value, method: method.value,
      runs: Object.fromEntries(Object.entries(runSelects).map(([k, s]) => [k, s.value])),
    }).catch((e) => this.fail(e)));
    box.append(apply);
  }

  /** Change the filters and redraw the visible layers they apply to. */
  async setFilters(next) {
    this.filters = { ...this.filters, ...next };
    await Promise.all([...this.layers.keys()].map((id) => this.load(id)));
  }

  /** The features API query of layer `id` under the current filters. */
  query(id) {
    const f = this.filters;
    const def = LAYERS.find((d) => d.id === id);
    const q = {};
    const cql = [];
    if (def.run && f.runs[def.run]) q.run = f.runs[def.run];
    if (id === "incidents") {
      if (f.from || f.to) q.datetime = `${f.from ? `${f.from}T00:00:00Z` : ".."}/${f.to ? `${f.to}T23:59:59Z` : ".."}`;
      if (f.category) cql.push(`category = ${cqlString(f.category)}`);
    }
    if (id === "hotspots" && f.significant) cql.push("gi_bin <> 0");
    if ((id === "forecasts" || id === "forecast-grids") && f.flagged) cql.push("flagged = true");
    if ((id === "forecasts" || id === "forecast-grids") && f.horizon) cql.push(`horizon_days = ${Number(f.horizon)}`);
    if ((id === "forecasts" || id === "forecast-grids") && f.method) cql.push(`method = ${cqlString(f.method)}`);
    if (cql.length) q.filter = cql.join(" AND ");
    return q;
  }

  async toggle(id, on) {
    const box = this.panel.querySelector(`input[name=layer][value="${id}"]`);
    if (box) box.checked = on;
    if (!on) {
      const entry = this.layers.get(id);
      if (entry) this.map.removeLayer(entry.layer);
      this.layers.delete(id);
      delete this.state.layers[id];
      this.refreshLegend();
      return;
    }
    await this.load(id);
  }

  /** (Re)load layer `id` from the features API and draw it. */
  async load(id) {
    const style = styler(id, this.legends);
    this.state.loading = (this.state.loading || 0) + 1;
    try {
      const query = this.query(id);
      let fc = await features(id, query);
      const truncated = fc.truncated; // over the cap for the whole area: draw the visible extent only
      if (truncated) fc = await features(id, { ...query, bbox: this.map.getBounds().toBBoxString() });
      if (!this._wanted(id)) return; // unticked while loading
      style.prepare?.(fc.features);
      const layer = this.draw(id, fc, style);
      const old = this.layers.get(id);
      if (old) this.map.removeLayer(old.layer);
      if (this.visible) layer.addTo(this.map);
      this.layers.set(id, { layer, style, count: fc.features.length, truncated });
      this.state.layers[id] = { count: fc.features.length, matched: fc.matched, truncated, query };
      const count = this.panel.querySelector(`.layer-row[data-layer="${id}"] .count`);
      if (count) count.textContent = `${fc.features.length}${fc.truncated ? "+" : ""}`;
      this.refreshLegend();
    } finally {
      this.state.loading -= 1;
    }
  }

  fail(err) {
    if (!(err instanceof ApiError)) console.error(err); // a bug; an API answer is shown, not logged
    this.notify(`${t("error")}: ${err.message}`, "error");
  }

  _wanted(id) {
    return this.panel.querySelector(`input[name=layer][value="${id}"]`)?.checked;
  }

  draw(id, fc, style) {
    const L_ = this.legends;
    if (id === "grids") {
      return L.geoJSON(fc, {
        renderer: this.outlineRenderer, interactive: true,
        style: { color: "#616161", weight: 1, fill: true, fillOpacity: 0, opacity: 0.9 },
        onEachFeature: (f, l) => l.bindTooltip(`${f.properties.code} ${f.properties.name ?? ""}`, { sticky: true }),
      });
    }
    if (id === "roads") {
      const c = L_.roads.classes[0].color;
      // faster roads drawn wider, as on a paper map
      return L.geoJSON(fc, { renderer: this.roadRenderer, interactive: false,
        style: (f) => ({ color: c, weight: Number(f.properties.speed_kmh) >= 60 ? 2.5 : 1, opacity: 0.9 }) });
    }
    if (id === "siting") {
      const [fresh, kept] = L_.siting.classes;
      return L.geoJSON(fc, {
        pointToLayer: (f, ll) => L.circleMarker(ll, { pane: "points", radius: f.properties.existing ? 5 : 8,
          color: "#ffffff", weight: 1.5, fillColor: (f.properties.existing ? kept : fresh).color, fillOpacity: 1 }),
        onEachFeature: (f, l) => l.bindTooltip(() => tooltip(f.properties)),
      });
    }
    if (id === "posts") {
      const c = L_.posts.classes[0].color;
      return L.geoJSON(fc, {
        pointToLayer: (f, ll) => L.circleMarker(ll, { pane: "points", radius: 6, color: "#ffffff", weight: 1.5,
          fillColor: c, fillOpacity: 1 }),
        onEachFeature: (f, l) => l.bindTooltip(`${f.properties.code} ${f.properties.name ?? ""}`),
      });
    }
    return L.geoJSON(fc, {
      renderer: this.canvas,
      pointToLayer: (f, ll) => L.circleMarker(ll, { renderer: this.canvas, radius: 3, weight: 0, fill: true,
        fillColor: style.color(f.properties), fillOpacity: 0.8 }),
      style: (f) => {
        const outline = style.outline?.(f.properties);
        return { fillColor: style.color(f.properties), fillOpacity: 0.7, color: outline || style.border || "#ffffff",
          weight: outline ? 2.5 : style.border ? 2 : 0.4, opacity: 0.9 };
      },
      onEachFeature: (f, l) => l.bindTooltip(() => tooltip(f.properties), { sticky: true }),
    });
  }

  refreshLegend() {
    if (!this.visible) return; // the planner view owns the legend
    const sections = [];
    for (const def of LAYERS) {
      const entry = this.layers.get(def.id);
      if (!entry || def.base) continue;
      sections.push({ title: this.legends.titles[def.id], rows: entry.style.rows() });
    }
    if (this.layers.has("grids")) {
      sections.push({ title: this.legends.titles.grids, rows: [{ color: "#616161", zh: "网格边界", en: "Grid boundary",
        swatch: "outline" }] });
    }
    if (this.layers.has("posts")) sections.push({ title: this.legends.titles.posts, rows: this.legends.posts.classes });
    if (this.layers.has("roads")) sections.push({ title: this.legends.titles.roads, rows: this.legends.roads.classes });
    this.legend.update(sections);
  }

  /** Hide every layer of this view (the planner view draws its own). */
  hide() {
    this.visible = false;
    for (const { layer } of this.layers.values()) this.map.removeLayer(layer);
  }

  show() {
    this.visible = true;
    for (const { layer } of this.layers.values()) layer.addTo(this.map);
    this.refreshLegend();
    for (const [id, entry] of this.layers) if (entry.truncated) this.load(id).catch((e) => this.fail(e));
    return this.loadTicked();
  }
}

/** A feature's properties as tooltip text, the zh or en variant of bilingual fields by the page language. */
function tooltip(p) {
  const skip = lang() === "zh" ? /(^|_)en$|^reason$|^drivers$|^label$/ : /_zh$/;
  const div = document.createElement("div");
  for (const [k, v] of Object.entries(p)) {
    if (v === null || v === undefined || v === "" || skip.test(k) || typeof v === "object") continue;
    const line = document.createElement("div");
    line.textContent = `${k}: ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : v}`;
    div.append(line);
  }
  return div;
}
