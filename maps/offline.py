"""Offline folium maps: Leaflet inlined from ``maps/node_modules``, no CDN, no base-map tiles.

Police networks (公安内网) have no internet, so a map file must carry every script, style and image it
uses. folium writes ``<script src="https://cdn…">`` tags for Leaflet, jQuery, Bootstrap and
awesome-markers; :func:`offline_map` drops all of them and inlines only Leaflet (installed from npm
by ``make maps-assets``), and :func:`save_offline` refuses to leave a file that still points outside.

Only what Leaflet itself provides works: vector layers, ``GeoJson`` with ``GeoJsonTooltip`` /
``GeoJsonPopup``, ``CircleMarker``, ``Tooltip``. ``folium.Popup`` and ``keep_in_front`` need jQuery,
which is not shipped; :func:`save_offline` rejects them with that message.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path

import folium
from branca.element import Element, MacroElement
from folium.template import Template

from geogrid.errors import GeogridError, InputError

MAPS_DIR = Path(__file__).resolve().parent
NODE_MODULES = MAPS_DIR / "node_modules"
BACKGROUND = "#f7f7f4"  # paper white: there is no base map under the layers


class OfflineMapError(GeogridError):
    """A map that would not work without the internet."""


class OfflineAssetsMissing(OfflineMapError):
    """The npm assets (Leaflet) are not installed in ``maps/node_modules``."""


class ExternalReferenceError(OfflineMapError):
    """Saved HTML loads a script, style, image or tile from outside the file."""

    def __init__(self, urls: Sequence[str]):
        self.urls = list(urls)
        shown = ", ".join(self.urls[:5]) + (" …" if len(self.urls) > 5 else "")
        super().__init__(f"offline map references {len(self.urls)} external URL(s): {shown}")


# --- assets -------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _leaflet_assets(node_modules: Path) -> tuple[str, str, dict[str, str]]:
    """(leaflet.js, leaflet.css with images as data: URIs, marker icon data: URIs)."""
    dist = node_modules / "leaflet" / "dist"
    if not (dist / "leaflet.js").is_file():
        raise OfflineAssetsMissing(
            f"Leaflet not found in {node_modules}: run `make maps-assets` "
            "(npm ci --prefix maps) to install the offline map assets"
        )
    images = {p.name: _data_uri(p) for p in (dist / "images").glob("*.png")}
    # The source map comment would make devtools fetch a file that is not there.
    js = re.sub(r"^//# sourceMappingURL=.*$", "", (dist / "leaflet.js").read_text("utf-8"), flags=re.M)
    css = re.sub(
        r"url\((['\"]?)images/([\w.-]+\.png)\1\)",
        lambda mt: f'url("{images[mt.group(2)]}")',
        (dist / "leaflet.css").read_text("utf-8"),
    )
    if "</script" in js.lower():  # would end the inline <script> early
        raise OfflineMapError("leaflet.js contains '</script' and cannot be inlined")
    return js, css, images


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


class _Raw(Element):
    """Text put into the page as it is. branca's Element would compile it as a Jinja template:
    slow for Leaflet's 150 kB, and wrong if the text holds "{{" or "{#"."""

    def __init__(self, text: str):
        super().__init__()
        self._text = text

    def render(self, **kwargs) -> str:
        return self._text


class _OfflineSetup(MacroElement):
    """Plain-text attribution prefix (Leaflet's links to leafletjs.com and shows a flag)."""

    _template = Template(
        """{% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.setPrefix("Leaflet");
        {% endmacro %}"""
    )


# --- building -----------------------------------------------------------------------------------

def offline_map(
    center: Sequence[float] | None = None,
    bounds: Sequence[float] | None = None,
    zoom: int = 13,
    *,
    node_modules: Path | None = None,
    **map_kwargs,
) -> folium.Map:
    """An empty folium map with Leaflet inlined, no tile layer and no CDN link.

    Parameters
    ----------
    center : (lon, lat), optional
        Map centre in GeoPandas order (not folium's lat, lon). Defaults to the middle of ``bounds``.
    bounds : (west, south, east, north), optional
        Extent to fit, as ``GeoDataFrame.total_bounds`` gives it.
    zoom : int
        Start zoom when no ``bounds`` are given.
    node_modules : Path, optional
        Where npm installed Leaflet; default ``maps/node_modules``.
    **map_kwargs
        Passed to :class:`folium.Map` (``tiles`` is always None).

    Raises
    ------
    OfflineAssetsMissing
        Leaflet is not installed: run ``make maps-assets``.
    """
    if center is None and bounds is None:
        raise InputError("offline_map needs center=(lon, lat) or bounds=(west, south, east, north)")
    if bounds is not None:
        bounds = _check_bounds(bounds)
        if center is None:
            center = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    lon, lat = (float(v) for v in center)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"center must be (lon, lat) in degrees, got {tuple(center)!r}")
    js, css, images = _leaflet_assets(Path(node_modules) if node_modules else NODE_MODULES)

    if map_kwargs.pop("tiles", None) is not None:
        raise InputError("offline maps take no tile layer (tiles=None): draw geogrid layers instead")
    map_kwargs.setdefault("zoom_snap", 0.25)  # fit small areas snugly; there are no tiles to keep whole
    m = folium.Map(location=[lat, lon], zoom_start=zoom, tiles=None, control_scale=True, **map_kwargs)
    # Instance attributes: folium's class-level lists are shared by every Map in the process.
    m.default_js, m.default_css = [], []
    header = m.get_root().header
    header.add_child(_Raw(f"<style>{css}\n.leaflet-container {{ background: {BACKGROUND}; }}</style>"),
                     name="leaflet_css")
    header.add_child(_Raw(f"<script>{js}</script>"), name="leaflet_js")
    # Leaflet guesses the marker image path from its CSS; with data: URIs the guess fails, so give
    # the icons explicitly (the usual bundler fix).
    header.add_child(_Raw(
        "<script>delete L.Icon.Default.prototype._getIconUrl;"
        f'L.Icon.Default.mergeOptions({{iconUrl: "{images["marker-icon.png"]}",'
        f'iconRetinaUrl: "{images["marker-icon-2x.png"]}", shadowUrl: "{images["marker-shadow.png"]}"}});'
        "</script>"), name="leaflet_icons")
    m.add_child(_OfflineSetup())
    if bounds is not None:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


def _check_bounds(bounds: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise InputError(f"bounds must be (west, south, east, north), got {bounds!r}") from None
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise InputError(f"bounds must be (west, south, east, north) in degrees, got {bounds!r}")
    return w, s, e, n


# --- verifying ----------------------------------------------------------------------------------

# Attributes that make the browser load something. <a>/<area> href only loads on a click.
_LOAD_ATTRS = {"src", "srcset", "data", "poster", "background", "xlink:href", "action", "formaction",
               "manifest"}
_EXTERNAL = re.compile(r"(?:https?:)?//", re.I)
# What, written just before a "//", makes it a load: an HTML attribute inside a JS string (popups),
# CSS url()/@import, a fetch/import, or a Leaflet call that takes a URL.
_LOAD_BEFORE = re.compile(
    r"""(?:\bsrc(?:set)?\s*=\s*\\?["']?|url\(\s*\\?["']?|@import\s+(?:url\()?\s*["']?"""
    r"""|\b(?:fetch|import|importScripts)\s*\(\s*["'`]"""
    r"""|L\.(?:tileLayer(?:\.wms)?|imageOverlay|videoOverlay)\(\s*["'`])\s*(?:https?:)?$""", re.I)
_URL_REST = re.compile(r"""[^"'`\s)\\<>]*""")
_TILE = re.compile(r"\{[zxy]\}")
_JQUERY = re.compile(r"\$\(\s*(?:`|document\b)")


def _loads_in_text(text: str) -> list[str]:
    """External URLs loaded by CSS or JavaScript text.

    Every "//" is found by a fast literal search and judged by the 60 characters before it: a
    regex scan of the whole text would take seconds on a map with 15,000 cells.
    """
    urls = []
    at = text.find("//")
    while at != -1:
        scheme = re.search(r"https?:$", text[max(0, at - 6):at], re.I)
        start = at - (len(scheme.group()) if scheme else 0)
        before = text[max(0, start - 60):start]
        url = text[start:at + 2] + _URL_REST.match(text, at + 2).group()
        if _LOAD_BEFORE.search(before):
            urls.append(url)
        elif _TILE.search(url) and before[-1:] in ("'", '"', "`"):  # a tile URL template
            urls.append(url)
        at = text.find("//", at + 2)
    return urls


def _calls_jquery(script: str) -> bool:
    """``$(`...`)`` or ``$(document)`` as folium's jQuery code writes them (not ``x$(`` names)."""
    for mt in _JQUERY.finditer(script):
        prev = script[mt.start() - 1] if mt.start() else " "
        if not (prev.isalnum() or prev in "_$"):
            return True
    return False


class _RefFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.uses_jquery = False
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = (value or "").strip()
            if name == "style":
                self.urls += _loads_in_text(value)
            elif name in _LOAD_ATTRS or (name == "href" and tag not in ("a", "area")):
                parts = [p.split()[0] for p in value.split(",") if p.strip()] if name == "srcset" else [value]
                self.urls += [p for p in parts if _EXTERNAL.match(p)]
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in in ("script", "style"):
            self.urls += _loads_in_text(data)
        if self._in == "script":
            self.uses_jquery |= _calls_jquery(data)


def _scan(html: str) -> _RefFinder:
    finder = _RefFinder()
    finder.feed(html)
    finder.close()
    return finder


def find_external_refs(html: str) -> list[str]:
    """External URLs the page would load: script/link/img sources, CSS ``url()``, tile templates.

    Namespace strings (``http://www.w3.org/2000/svg``), attribution text and ``<a href>`` links are
    not loads and are not reported.
    """
    return list(dict.fromkeys(_scan(html).urls))


def check_offline(html: str) -> None:
    """Raise if ``html`` needs the network (:class:`ExternalReferenceError`, naming the URLs) or jQuery."""
    finder = _scan(html)
    if finder.urls:
        raise ExternalReferenceError(list(dict.fromkeys(finder.urls)))
    if finder.uses_jquery:
        raise OfflineMapError(
            "map uses jQuery (folium.Popup or keep_in_front), which offline maps do not ship: "
            "use folium.GeoJsonPopup / GeoJsonTooltip or folium.Tooltip instead")


def save_offline(m: folium.Map, path: str | Path) -> Path:
    """Write ``m`` as one self-contained HTML file, then verify the written file is offline.

    Raises
    ------
    ExternalReferenceError
        The file would load something from the network; the file is removed.
    OfflineMapError
        The map needs jQuery; the file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(m.get_root().render(), encoding="utf-8")
    try:
        check_offline(path.read_text(encoding="utf-8"))
    except OfflineMapError:
        path.unlink(missing_ok=True)  # never leave a map that fails on the police network
        raise
    return path
