// The one place that talks to the API: adds the key, reads ETags, turns problem+json into errors.
const KEY = "geogrid.apiKey";
export const BASE = document.querySelector('meta[name="geogrid-base"]')?.content ?? "";

export const apiKey = {
  get: () => localStorage.getItem(KEY) || "",
  set: (k) => (k ? localStorage.setItem(KEY, k.trim()) : localStorage.removeItem(KEY)),
};

/** An HTTP error answered by the API, with its RFC 9457 problem body. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

/**
 * Call the API. `path` is a path under the app ("/collections") or an absolute URL of this server
 * (a `next` link). Returns {data, etag, status}; throws ApiError on a non-2xx answer.
 */
export async function api(path, { method = "GET", body, etag, query } = {}) {
  const url = new URL(path.startsWith("http") ? path : BASE + path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = { Accept: "application/geo+json, application/json;q=0.9, application/problem+json;q=0.8" };
  const key = apiKey.get();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (etag) headers["If-Match"] = etag;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, typeof data === "object" ? data : { detail: data });
  return { data, etag: res.headers.get("etag"), status: res.status };
}

/**
 * Features of a collection, following `next` links up to `max` features:
 * {type, features, matched (numberMatched of the query), truncated (more matched than fetched)}.
 */
export async function features(collection, query = {}, max = 50000) {
  const out = [];
  let matched;
  let next = `/collections/${encodeURIComponent(collection)}/items`;
  let q = { limit: 10000, ...query }; // the server cuts limit to its own maximum
  while (next && out.length < max) {
    const { data } = await api(next, { query: q });
    out.push(...(data.features || []));
    matched ??= data.numberMatched;
    next = (data.links || []).find((l) => l.rel === "next")?.href;
    q = undefined; // the next link carries the query
  }
  return { type: "FeatureCollection", features: out, matched: matched ?? out.length, truncated: Boolean(next) };
}
