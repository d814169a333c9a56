// Planner view: open or create a draft plan, draw/edit/split/merge its grids with leaflet-geoman, save
// through the plans API (If-Match on the grid's ETag), validate, preview, activate, read the history.
import L from "./leaflet-global.js";
import { api, ApiError, features } from "./api.js";
import { onLang, t } from "./i18n.js";

const STYLE = { color: "#08519c", weight: 1.5, fillColor: "#6baed6", fillOpacity: 0.15 };
const SELECTED = { color: "#d94801", weight: 3, fillColor: "#fd8d3c", fillOpacity: 0.3 };
const PROBLEM = { color: "#b2182b", weight: 3, fillColor: "#b2182b", fillOpacity: 0.35, dashArray: "6 4" };

/** A mistake of the user's (nothing selected, no code): shown, not logged as a bug. */
const userError = (message) => Object.assign(new Error(message), { user: true });
const listOf = (data, key) => (Array.isArray(data) ? data : data?.[key] ?? data?.items ?? data?.features ?? []);

export class Planner {
  constructor(map, legend, legends, context, state, notify) {
    Object.assign(this, { map, legend, legends, context, state, notify });
    this.plans = [];
    this.plan = null; // the open plan {id, name, status}
    this.grids = new Map(); // code → Leaflet layer
    this.etags = new Map(); // code → ETag of the version loaded
    this.selection = []; // codes, in click order
    this.visible = false;
    map.createPane("planner").style.zIndex = 430;
    map.createPane("problems").style.zIndex = 460;
    this.renderer = L.svg({ pane: "planner" }); // SVG: geoman edits vertices of SVG paths
    this.group = L.featureGroup();
    this.problems = L.featureGroup();
    state.planner = { plan: null, grids: 0, selection: [], problems: null, lastSave: null, editing: null, mode: null,
      lastChange: null };
    onLang(() => this.legendUpdate());
  }

  async mount(panel) {
    this.panel = panel;
    const on = (id, fn) => panel.querySelector(id).addEventListener("click", () => fn().catch((e) => this.error(e)));
    on("#plan-open", () => this.open(Number(panel.querySelector("#plan-select").value)));
    on("#draft-new", () => this.createDraft(panel.querySelector("#draft-name").value));
    on("#t-edit", async () => this.edit());
    on("#t-save", () => this.save());
    on("#t-cancel", () => this.cancel());
    on("#t-draw", async () => this.drawNew());
    on("#t-split", async () => this.splitMode());
    on("#t-merge", () => this.merge());
    on("#t-delete", () => this.remove());
    on("#t-validate", () => this.validate());
    on("#t-preview", () => this.preview());
    on("#t-history", () => this.history());
    on("#t-activate", () => this.activate());
    this.map.on("pm:create", (e) => this.created(e).catch((err) => this.error(err)));
    if (!this.context.can_write) {
      panel.querySelectorAll(".tools button, #draft-new").forEach((b) => (b.disabled = true));
      this.out(t("view_only"));
    }
  }

  error(err) {
    if (!(err instanceof ApiError) && !err.user) console.error(err);
    this.notify(`${t("error")}: ${err.message}`, "error");
  }

  async show() {
    this.visible = true;
    this.group.addTo(this.map);
    this.problems.addTo(this.map);
    this.legendUpdate();
    if (!this.plans.length) await this.refreshPlans();
    if (!this.plan) {
      const first = this.plans.find((p) => p.status === "draft") ?? this.plans.find((p) => p.status === "active");
      if (first) await this.open(first.id);
    }
  }

  hide() {
    this.visible = false;
    this.cancelModes();
    this.map.removeLayer(this.group);
    this.map.removeLayer(this.problems);
  }

  legendUpdate() {
    if (!this.visible) return;
    this.legend.update([{ title: this.legends.titles.grids, rows: [
      { color: STYLE.color, zh: "方案网格", en: "Plan grid", swatch: "outline" },
      { color: SELECTED.color, zh: "已选网格", en: "Selected grid", swatch: "outline" },
      { color: PROBLEM.color, zh: "校验问题", en: "Validation problem", swatch: "fill" },
    ] }]);
  }

  out(content) {
    const box = this.panel.querySelector("#planner-out");
    box.replaceChildren(...(typeof content === "string" ? [document.createTextNode(content)] : [content]));
  }

  /** List the plans into the picker. */
  async refreshPlans() {
    const { data } = await api("/plans");
    this.plans = listOf(data, "plans");
    const sel = this.panel.querySelector("#plan-select");
    sel.replaceChildren(...this.plans.map((p) => new Option(`#${p.id} ${p.name} (${p.status})`, p.id)));
    if (this.plan) sel.value = this.plan.id;
    return this.plans;
  }

  /** Create a draft from the active plan and open it. */
  async createDraft(name) {
    // a unique default name: plan names are unique
    name = name?.trim() || `draft-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}`;
    const { data } = await api("/plans", { method: "POST", body: { name } });
    await this.refreshPlans();
    await this.open(data.id);
    return data;
  }

  /** Open plan `id`: draw its grids, editable ones in a draft. */
  async open(id) {
    this.cancelModes();
    const plan = this.plans.find((p) => p.id === id) ?? (await this.refreshPlans()).find((p) => p.id === id);
    if (!plan) throw new Error(`no plan ${id}`);
    this.notify(t("loading"));
    const fc = await features("grids", { plan: id });
    this.plan = plan;
    this.group.clearLayers();
    this.problems.clearLayers();
    this.grids.clear();
    this.etags.clear();
    this.selection = [];
    L.geoJSON(fc, {
      renderer: this.renderer, pane: "planner", style: STYLE,
      onEachFeature: (f, layer) => this.addGrid(f, layer),
    });
    const sel = this.panel.querySelector("#plan-select");
    sel.value = id;
    this.panel.querySelector("#plan-status").textContent = `${t("status")}: ${plan.status} · ${fc.features.length} grids`;
    Object.assign(this.state.planner, { plan: { ...plan }, grids: fc.features.length, selection: [], problems: null });
    this.showSelection();
    this.notify("");
    return fc.features.length;
  }

  addGrid(feature, layer) {
    const code = feature.properties.code;
    layer.feature = feature;
    layer.options.pane = "planner";
    layer.bindTooltip(() => `${code} ${layer.feature.properties.name ?? ""} v${layer.feature.properties.version ?? ""}`,
      { sticky: true });
    layer.on("click", (e) => this.select(code, e.originalEvent?.shiftKey).catch((err) => this.error(err)));
    this.grids.set(code, layer);
    this.group.addLayer(layer);
  }

  /** Select grid `code` (add to the selection with shift, for merging) and fetch its ETag. */
  async select(code, add = false) {
    if (this.editing || this.mode) return; // finish or cancel the edit (or the drawing) first
    if (!add) this.selection = [];
    if (!this.selection.includes(code)) this.selection.push(code);
    this.grids.forEach((l, c) => l.setStyle(this.selection.includes(c) ? SELECTED : STYLE));
    this.showSelection();
    await this.fetchGrid(code);
  }

  async fetchGrid(code) {
    const { data, etag } = await api(this.gridPath(code));
    this.etags.set(code, etag);
    return data;
  }

  gridPath(code) {
    return `/plans/${this.plan.id}/grids/${encodeURIComponent(code)}`;
  }

  showSelection() {
    this.state.planner.selection = [...this.selection];
    this.panel.querySelector("#selection").textContent = this.selection.join(", ") || t("none");
  }

  /** Start editing the vertices of the selected grid (leaflet-geoman). */
  edit(code = this.selection[0]) {
    const layer = this.grids.get(code);
    if (!layer) throw userError(`${t("selected")}: ${t("none")}`);
    this.cancelModes();
    this.editing = code;
    // the grid fills the view: its vertex handles are apart and none hides under a control
    this.map.fitBounds(layer.getBounds(), { padding: [60, 60], maxZoom: 17, animate: false });
    layer.pm.enable({ allowSelfIntersection: false, snappable: true, preventMarkerRemoval: false });
    this.state.planner.editing = code;
    this.notify(t("edit_hint"));
    return layer;
  }

  /** The geometry to save for grid `code` (its layer as GeoJSON, always a MultiPolygon). */
  geometry(code) {
    const g = this.grids.get(code).toGeoJSON().geometry;
    return g.type === "Polygon" ? { type: "MultiPolygon", coordinates: [g.coordinates] } : g;
  }

  /** Save grid `code` (the one being edited by default) with If-Match; a 412 reloads the plan. */
  async save(code = this.editing ?? this.selection[0]) {
    if (!code) throw userError(`${t("selected")}: ${t("none")}`);
    if (!this.etags.has(code)) await this.fetchGrid(code);
    const layer = this.grids.get(code);
    try {
      const { data, etag } = await api(this.gridPath(code), {
        method: "PUT", etag: this.etags.get(code), body: { type: "Feature", geometry: this.geometry(code),
          properties: {} } });
      this.etags.set(code, etag);
      if (data?.properties) layer.feature = data; // the saved version (tooltip, properties)
      layer.pm.disable();
      this.editing = null;
      this.state.planner.editing = null;
      this.state.planner.lastSave = { code, status: "saved", etag, version: data?.properties?.version ?? data?.version };
      this.notify(`${t("saved")}: ${code}${etag ? ` (${etag})` : ""}`, "ok");
      return this.state.planner.lastSave;
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        this.editing = null;
        this.state.planner.editing = null;
        await this.open(this.plan.id);
        this.notify(t("conflict"), "error");
        this.state.planner.lastSave = { code, status: "conflict" };
        return this.state.planner.lastSave;
      }
      throw err;
    }
  }

  async cancel() {
    if (this.editing) await this.open(this.plan.id);
    this.cancelModes();
  }

  cancelModes() {
    if (this.editing) this.grids.get(this.editing)?.pm.disable();
    this.editing = null;
    this.state.planner.editing = null;
    this.mode = null;
    this.state.planner.mode = null;
    if (this.map.pm.globalDrawModeEnabled()) this.map.pm.disableDraw();
  }

  /** Draw a line across the selected grid, then split it there. */
  splitMode() {
    if (!this.selection.length) throw userError(`${t("selected")}: ${t("none")}`);
    this.cancelModes();
    this.mode = "split";
    this.state.planner.mode = "split";
    this.map.fitBounds(this.grids.get(this.selection[0]).getBounds(), { padding: [80, 80], maxZoom: 17, animate: false });
    // no snapping: a line end snapped onto the grid's own border would not cross it
    this.map.pm.enableDraw("Line", { snappable: false, finishOn: "dblclick" });
    this.notify(t("draw_split"));
  }

  /** Draw a polygon that becomes the new grid coded as in the "new code" box. */
  drawNew() {
    this.newCode = this.panel.querySelector("#grid-code").value.trim();
    if (!this.newCode) throw userError(t("new_code"));
    this.cancelModes();
    this.mode = "new";
    this.state.planner.mode = "new";
    this.map.pm.enableDraw("Polygon", { snappable: true, allowSelfIntersection: false });
    this.notify(t("draw_hint"));
  }

  async created(e) {
    const mode = this.mode;
    this.mode = null;
    this.state.planner.mode = null;
    const geometry = e.layer.toGeoJSON().geometry;
    this.map.removeLayer(e.layer);
    if (mode === "split") return this.split(this.selection[0], geometry);
    if (mode === "new") {
      return this.create(this.newCode, geometry);
    }
    return null;
  }

  /** Add grid `code` with `geometry` (a GeoJSON Polygon or MultiPolygon) to the open draft. */
  async create(code, geometry) {
    const { data } = await api(`/plans/${this.plan.id}/grids`, { method: "POST",
      body: { type: "Feature", properties: { code, name: code }, geometry } });
    await this.open(this.plan.id);
    this.notify(`${t("saved")}: ${code}`, "ok");
    return data;
  }

  async split(code, line) {
    const { data } = await api(`${this.gridPath(code)}/split`, { method: "POST", body: { line } });
    await this.open(this.plan.id);
    const into = data.features.map((f) => f.properties.code);
    this.state.planner.lastChange = { action: "split", code, into };
    this.notify(`${t("split")}: ${code} → ${into.join(", ")}`, "ok");
    return data;
  }

  async merge(codes = this.selection) {
    // the versions this page saw: a grid changed meanwhile makes the merge fail (412) instead of losing that edit
    const versions = Object.fromEntries(codes.filter((c) => this.etags.get(c))
      .map((c) => [c, Number(this.etags.get(c).replace(/\D/g, ""))]));
    const { data } = await api(`/plans/${this.plan.id}/merge`, { method: "POST", body: { codes, versions } });
    await this.open(this.plan.id);
    this.state.planner.lastChange = { action: "merge", codes, into: data.properties.code };
    this.notify(`${t("merge")}: ${codes.join(" + ")} → ${data.properties.code}`, "ok");
    return data;
  }

  /** Delete the selected grids (each with If-Match on the version this page saw); the history keeps them. */
  async remove(codes = this.selection) {
    if (!codes.length) throw userError(`${t("selected")}: ${t("none")}`);
    for (const code of codes) {
      if (!this.etags.has(code)) await this.fetchGrid(code);
      await api(this.gridPath(code), { method: "DELETE", etag: this.etags.get(code) });
    }
    await this.open(this.plan.id);
    this.state.planner.lastChange = { action: "delete", codes: [...codes] };
    this.notify(`${t("deleted")}: ${codes.join(", ")}`, "ok");
    return codes;
  }

  /** Put back version `version` of grid `code` as its newest version (also a deleted grid). */
  async restore(code, version) {
    const { data } = await api(`${this.gridPath(code)}/restore`, { method: "POST", body: { version } });
    await this.open(this.plan.id);
    this.state.planner.lastChange = { action: "restore", code, version, into: data?.properties?.version };
    this.notify(`${t("restored")}: ${code} v${version} → v${data?.properties?.version ?? ""}`, "ok");
    return data;
  }

  /** Validate the plan: list the problems and draw where they are. */
  async validate() {
    const { data } = await api(`/plans/${this.plan.id}/validate`);
    this.showProblems(listOf(data, "problems"));
    return data;
  }

  /** List problems ({kind, codes, message, location}) and draw their locations. */
  showProblems(problems) {
    this.problems.clearLayers();
    const list = document.createElement("ul");
    for (const p of problems) {
      const where = p.location ?? p.geometry ?? p.where;
      if (where) {
        L.geoJSON(where, { pane: "problems", style: PROBLEM,
          pointToLayer: (_, ll) => L.circleMarker(ll, { pane: "problems", radius: 8, ...PROBLEM }) })
          .bindTooltip(p.message ?? p.kind ?? "").addTo(this.problems);
      }
      const li = document.createElement("li");
      li.className = "problem";
      li.textContent = `${p.kind ?? p.type ?? ""} ${(p.codes ?? []).join(", ")} ${p.message ?? p.detail ?? ""}`.trim();
      list.append(li);
    }
    this.state.planner.problems = problems.length;
    if (problems.length) {
      this.out(list);
      this.notify(`${t("problems")}: ${problems.length}`, "error");
    } else {
      this.out(t("no_problems"));
      this.notify(t("no_problems"), "ok");
    }
  }

  /** Preview the plan against the active one (a table of the compared figures). */
  async preview() {
    this.notify(t("loading"));
    const { data } = await api(`/plans/${this.plan.id}/preview`);
    const box = document.createElement("div");
    const rows = [];
    const facts = [];
    walk(data, "", rows, facts);
    box.append(table(rows), table(facts));
    this.out(box);
    // the grids of beats the edits broke, outlined where they are
    this.problems.clearLayers();
    for (const beat of data.beat_check?.broken ?? []) {
      for (const code of beat.grid_codes ?? []) {
        const layer = this.grids.get(code);
        if (layer) L.geoJSON(layer.toGeoJSON(), { pane: "problems", style: PROBLEM })
          .bindTooltip(`${beat.beat}: ${(beat.problems ?? []).join("; ")}`).addTo(this.problems);
      }
    }
    this.state.planner.preview = { rows: rows.length, broken: (data.beat_check?.broken ?? []).length };
    this.notify(`${t("preview")}: ${data.compared_with?.name ?? ""}`, "ok");
    return data;
  }

  async activate() {
    let data;
    try {
      ({ data } = await api(`/plans/${this.plan.id}/activate`, { method: "POST" }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && err.problem.problems) {
        this.showProblems(err.problem.problems);
        this.notify(err.message, "error");
        return err.problem;
      }
      throw err;
    }
    await this.refreshPlans();
    this.plan = this.plans.find((p) => p.id === this.plan.id) ?? this.plan;
    this.state.planner.plan = { ...this.plan };
    this.panel.querySelector("#plan-status").textContent = `${t("status")}: ${this.plan.status}`;
    this.notify(t("activated"), "ok");
    return data;
  }

  async history() {
    const { data } = await api(`/plans/${this.plan.id}/history`);
    const rows = listOf(data, "history").slice().reverse(); // newest first
    const tbl = table(rows.map((r) => ({ at: r.at, actor: r.actor, action: r.action, code: r.code, version: r.version })));
    // a version that still has a geometry can be put back (in a draft, by a role that writes)
    const canRestore = this.context.can_write && this.plan.status === "draft";
    if (canRestore) {
      tbl.tHead.rows[0].insertCell().textContent = "";
      [...tbl.tBodies[0].rows].forEach((tr, i) => {
        const cell = tr.insertCell();
        if (rows[i].gone) return;
        const b = document.createElement("button");
        b.type = "button";
        b.className = "restore";
        b.textContent = t("restore");
        b.addEventListener("click", () => this.restore(rows[i].code, rows[i].version).catch((e) => this.error(e)));
        cell.append(b);
      });
    }
    this.out(tbl);
    this.state.planner.history = rows.length;
    return data;
  }
}

/** A table of a list of flat objects (the columns: every key met). */
function table(data) {
  const tbl = document.createElement("table");
  const rows = data;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = tbl.createTHead().insertRow();
  cols.forEach((c) => (head.insertCell().textContent = c));
  const body = tbl.createTBody();
  for (const r of rows.slice(0, 200)) {
    const tr = body.insertRow();
    cols.forEach((c) => (tr.insertCell().textContent = r[c] === undefined || r[c] === null ? "" : String(r[c])));
  }
  return tbl;
}

/**
 * Split a preview into comparison rows ({draft, active, change} objects → one row each) and other facts
 * (scalars, lists of codes, lists of objects summarised one per line).
 */
function walk(obj, path, rows, facts) {
  for (const [k, v] of Object.entries(obj ?? {})) {
    const key = path ? `${path}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) {
      if ("draft" in v && "active" in v) rows.push({ "": key, active: fmt(v.active), draft: fmt(v.draft), change: fmt(v.change) });
      else walk(v, key, rows, facts);
    } else if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== "object")) facts.push({ "": key, value: v.join(", ") });
      else v.forEach((x, i) => facts.push({ "": `${key}[${i}]`, value: Object.entries(x)
        .map(([a, b]) => `${a}=${Array.isArray(b) ? b.join(",") : typeof b === "object" && b ? JSON.stringify(b) : b}`)
        .join("; ") }));
    } else {
      facts.push({ "": key, value: fmt(v) });
    }
  }
}

const fmt = (v) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toFixed(4)) : v);
