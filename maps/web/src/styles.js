// Colours of each layer's features, from the classes in /map/legends.json (generated from maps/palettes.py).

/** 'New Hot Spot', 'new_hot' → 'new hot' (the same rule as maps.palettes.normalise_pattern). */
export function normalisePattern(value) {
  let s = String(value).toLowerCase().replace(/[_-]/g, " ").split(/\s+/).filter(Boolean).join(" ");
  for (const suffix of [" spot", " detected"]) if (s.endsWith(suffix)) s = s.slice(0, -suffix.length);
  return s;
}

/** The emerging-pattern key of a feature (geogrid.emerging stores 'new' + hot_or_cold 'hot'). */
export function emergingKey(p) {
  const side = p.hot_or_cold;
  const pattern = normalisePattern(p.pattern ?? "");
  return normalisePattern(side && !pattern.endsWith(side) ? `${pattern} ${side}` : pattern);
}

/** The class (a legend row) of `v`: the first holding v <= max or v < below; missing values → the last. */
function classOf(classes, v) {
  const x = v === null || v === undefined ? NaN : Number(v);
  if (Number.isNaN(x)) return classes[classes.length - 1];
  return classes.find((c) => (c.max !== undefined && x <= c.max) || (c.below !== undefined && x < c.below)
    || (c.max === undefined && c.below === undefined)) ?? classes[classes.length - 1];
}

/** Quantile class limits of `values` in `k` classes (as mapclassify.Quantiles). */
export function quantiles(values, k) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return [];
  const uniq = new Set(v).size;
  k = Math.max(1, Math.min(k, uniq));
  const upper = [];
  for (let i = 1; i <= k; i++) {
    const q = v[Math.min(v.length - 1, Math.ceil((i / k) * v.length) - 1)];
    if (!upper.length || q > upper[upper.length - 1]) upper.push(q);
  }
  return upper;
}

const fmt = (x) => Number(x).toPrecision(3).replace(/\.?0+$/, "");

/**
 * A styler for layer `id`: {color(feature) → fill colour, rows → legend rows, prepare(features)}.
 * `prepare` sees the loaded features first (quantile classes of forecasts, colours of beats).
 */
export function styler(id, legends) {
  const L_ = legends[id];
  if (id === "hotspots" || id === "tiers") {
    const byKey = new Map(L_.classes.map((c) => [String(c.key), c]));
    return { color: (p) => byKey.get(String(p[L_.field]))?.color ?? legends.not_significant, rows: () => L_.classes };
  }
  if (id === "emerging") {
    const byKey = new Map(L_.classes.map((c) => [c.key, c]));
    let present = new Set();
    return {
      prepare: (fs) => (present = new Set(fs.map((f) => emergingKey(f.properties)))),
      color: (p) => byKey.get(emergingKey(p))?.color ?? legends.not_significant,
      rows: () => L_.classes.filter((c) => present.has(c.key)),
    };
  }
  if (id === "staffing") {
    return { color: (p) => classOf(L_.classes, p[L_.field] ?? 0).color, rows: () => L_.classes };
  }
  if (id === "coverage" || id === "coverage-cells") {
    return { color: (p) => classOf(L_.classes, p[L_.field]).color, rows: () => L_.classes };
  }
  if (id === "forecasts" || id === "forecast-grids") {
    let upper = [];
    let colours = [];
    let lower = [];
    return {
      prepare(fs) {
        const scores = fs.map((f) => Number(f.properties.score));
        upper = quantiles(scores, L_.ramp.length);
        const n = upper.length;
        colours = upper.map((_, i) => L_.ramp[n === 1 ? 0 : Math.round((i * (L_.ramp.length - 1)) / (n - 1))]);
        lower = [Math.min(...scores.filter(Number.isFinite)), ...upper.slice(0, -1)];
      },
      color(p) {
        const i = upper.findIndex((u) => Number(p.score) <= u);
        return colours[i < 0 ? colours.length - 1 : i] ?? L_.ramp[0];
      },
      outline: (p) => (p.flagged ? L_.flagged.color : null),
      rows: () => [
        ...colours.map((c, i) => ({ color: c, zh: `风险 ${fmt(lower[i])}–${fmt(upper[i])}`,
          en: `Risk ${fmt(lower[i])}–${fmt(upper[i])}`, swatch: "fill" })).reverse(),
        L_.flagged,
      ],
    };
  }
  if (id === "beats") {
    let colourOf = new Map();
    let rows = [];
    return {
      prepare(fs) {
        fs.sort((a, b) => Number(a.properties.beat) - Number(b.properties.beat));
        colourOf = beatColours(fs, L_.palette);
        rows = fs.slice(0, 20).map((f) => ({ color: colourOf.get(f.properties.beat), zh: `警区 ${f.properties.beat}`,
          en: `Beat ${f.properties.beat}`, swatch: "fill" }));
        if (fs.length > 20) rows.push({ color: "#ffffff", zh: `另有 ${fs.length - 20} 个警区`,
          en: `${fs.length - 20} more beats`, swatch: "fill" });
      },
      color: (p) => colourOf.get(p.beat) ?? L_.palette[0],
      border: L_.border,
      rows: () => rows,
    };
  }
  if (id === "incidents") {
    // raw points for privileged roles; H3 counts (small counts suppressed) for the others
    let upper = [];
    const ramp = legends.forecasts.ramp;
    return {
      prepare(fs) {
        upper = quantiles(fs.map((f) => Number(f.properties.count ?? 1)), ramp.length);
      },
      color(p) {
        if (p.count === undefined) return "#3f007d";
        const i = upper.findIndex((u) => Number(p.count) <= u);
        return ramp[i < 0 ? ramp.length - 1 : i];
      },
      rows: () => (upper.length > 1 ? upper.map((u, i) => ({ color: ramp[i], zh: `≤ ${fmt(u)} 起`, en: `≤ ${fmt(u)}`,
        swatch: "fill" })) : [{ color: "#3f007d", zh: "警情", en: "Incident", swatch: "circle" }]),
    };
  }
  if (id === "siting") {
    return { color: (p) => L_.classes[p.existing ? 1 : 0].color, rows: () => L_.classes };
  }
  return { color: () => "#756bb1", rows: () => [] };
}

/** Colours such that beats whose boxes touch differ (greedy colouring, as maps.layers does with networkx). */
function beatColours(fs, palette) {
  const boxes = fs.map((f) => bbox(f.geometry));
  const colour = new Map();
  const order = fs.map((_, i) => i);
  order.forEach((i) => {
    const used = new Set();
    order.forEach((j) => {
      if (i !== j && colour.has(fs[j].properties.beat) && touches(boxes[i], boxes[j])) used.add(colour.get(fs[j].properties.beat));
    });
    colour.set(fs[i].properties.beat, palette.find((c) => !used.has(c)) ?? palette[i % palette.length]);
  });
  return colour;
}

function bbox(g) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => (typeof c[0] === "number"
    ? (b[0] = Math.min(b[0], c[0]), b[1] = Math.min(b[1], c[1]), b[2] = Math.max(b[2], c[0]), b[3] = Math.max(b[3], c[1]))
    : c.forEach(walk));
  if (g) walk(g.coordinates);
  return b;
}

const touches = (a, b) => a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
