// The legend control: one section per visible layer, labels in the page's language.
import L from "./leaflet-global.js";
import { pick } from "./i18n.js";

export const Legend = L.Control.extend({
  options: { position: "bottomright" },

  onAdd() {
    this._el = L.DomUtil.create("div", "geogrid-legend");
    this._el.setAttribute("data-testid", "legend");
    L.DomEvent.disableClickPropagation(this._el);
    L.DomEvent.disableScrollPropagation(this._el);
    this._sections = [];
    return this._el;
  },

  /** sections: [{title: {zh, en}, rows: [{color, zh, en, swatch}]}] */
  update(sections) {
    this._sections = sections ?? this._sections;
    this._el.replaceChildren();
    for (const s of this._sections) {
      if (!s.rows.length) continue;
      const box = L.DomUtil.create("div", "section", this._el);
      L.DomUtil.create("div", "title", box).textContent = pick(s.title);
      for (const r of s.rows) {
        const row = L.DomUtil.create("div", "row", box);
        const sw = L.DomUtil.create("span", `sw ${r.swatch || "fill"}`, row);
        sw.style.background = r.swatch === "outline" || r.swatch === "line" ? "transparent" : r.color;
        sw.style.borderColor = r.color;
        L.DomUtil.create("span", "label", row).textContent = pick(r);
      }
    }
    this._el.hidden = !this._el.childElementCount;
  },

  /** The legend's text as shown (used by tests and screen readers). */
  text() {
    return this._el.innerText;
  },
});
