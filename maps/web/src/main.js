// The web map at /map: boots the page, asks for an API key, and switches between the two views.
import L from "./leaflet-global.js";
import "@geoman-io/leaflet-geoman-free";
import { api, apiKey, ApiError } from "./api.js";
import { lang, onLang, setLang, t, translate } from "./i18n.js";
import { Legend } from "./legend.js";
import { Commander, LAYERS } from "./commander.js";
import { Planner } from "./planner.js";

// What tests and other scripts can read and drive (window.geogrid).
const state = { ready: false, view: "commander", layers: {}, loading: 0, errors: [] };
const app = { state, L, setLang, lang, t };
window.geogrid = app;

const statusEl = document.getElementById("status");
/** Show a message in the side panel; kind "error" | "ok" | "". */
function notify(message, kind = "") {
  statusEl.textContent = message;
  statusEl.className = kind;
  if (kind === "error") state.errors.push(message);
}
app.notify = notify;

function takeKeyFromUrl() {
  // ?key=… is accepted once: stored, then removed from the address bar (and from history)
  const url = new URL(window.location.href);
  if (!url.searchParams.has("key")) return;
  apiKey.set(url.searchParams.get("key"));
  url.searchParams.delete("key");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
}

function keyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key");
  input.value = apiKey.get();
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    apiKey.set(input.value);
    window.location.reload();
  });
}

function switchView(view, commander, planner) {
  state.view = view;
  document.querySelectorAll("#views button").forEach((b) => b.setAttribute("aria-selected", b.dataset.view === view));
  document.querySelectorAll("#side section[data-view]").forEach((s) => (s.hidden = s.dataset.view !== view));
  if (view === "planner") {
    commander.hide();
    return planner.show();
  }
  planner.hide();
  return commander.show();
}

async function boot() {
  takeKeyFromUrl();
  keyForm();
  setLang(lang());
  const map = L.map("map", { zoomControl: true, attributionControl: true, minZoom: 3, maxZoom: 19 });
  map.attributionControl.setPrefix("geogrid · Leaflet");
  map.setView([31.82, 117.23], 12); // moved to the active plan's extent below
  app.map = map;
  map.pm.setLang(lang() === "zh" ? "zh" : "en");
  onLang((l) => map.pm.setLang(l === "zh" ? "zh" : "en"));
  document.getElementById("lang").addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));

  let legends;
  let context;
  try {
    [{ data: legends }, { data: context }] = await Promise.all([api("/map/legends.json"), api("/map/context.json")]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      notify(t("key_needed"), "error");
      document.getElementById("key").focus();
      state.ready = true;
      return;
    }
    throw err;
  }
  app.legends = legends;
  app.context = context;
  document.getElementById("role").textContent = context.role;
  const bbox = context.active_plan?.bbox;
  if (bbox) map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]]);

  const legend = new Legend().addTo(map);
  app.legend = legend;
  onLang(() => legend.update());
  const commander = new Commander(map, legend, legends, context, state, notify);
  const planner = new Planner(map, legend, legends, context, state, notify);
  Object.assign(app, { commander, planner, layerIds: LAYERS.map((d) => d.id) });
  document.querySelectorAll("#views button").forEach((b) =>
    b.addEventListener("click", () => app.showView(b.dataset.view)));
  app.showView = (view) => switchView(view, commander, planner).catch(fail);
  await commander.mount(document.getElementById("commander-panel"));
  await planner.mount(document.getElementById("planner-panel"));
  const view = new URL(window.location.href).searchParams.get("view") === "planner" ? "planner" : "commander";
  await switchView(view, commander, planner);
  translate(document);
  state.ready = true;
}

function fail(err) {
  console.error(err);
  notify(`${t("error")}: ${err.message}`, "error");
}

app.ready = boot().catch((err) => {
  fail(err);
  state.ready = true;
});
