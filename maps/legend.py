"""A bilingual (zh-CN / en) legend for classed colour maps, drawn as a Leaflet control.

The legend's HTML is written into the page itself (not built in JavaScript), so it needs no script
library and its text can be read, searched and tested in the saved file; a small script moves it
into Leaflet's control corner so it does not hide behind the map or steal its clicks.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from branca.element import MacroElement
from folium.template import Template

from geogrid.errors import InputError

Swatch = Literal["fill", "outline", "circle", "line"]
POSITIONS = ("topleft", "topright", "bottomleft", "bottomright")


@dataclass(frozen=True)
class LegendRow:
    """One legend row: a swatch of ``color`` and the label "label_zh / label_en"."""

    color: str
    label_zh: str
    label_en: str
    swatch: Swatch = "fill"

    @property
    def label(self) -> str:
        return f"{self.label_zh} / {self.label_en}"


class Legend(MacroElement):
    """Bilingual legend: title "热点 Hotspot", then one row per class.

    Parameters
    ----------
    title_zh, title_en : str
        Title halves, shown as ``"{title_zh} {title_en}"``.
    rows : iterable of LegendRow
        Classes from top to bottom.
    position : {"topleft", "topright", "bottomleft", "bottomright"}
        Leaflet control corner.

    Examples
    --------
    >>> Legend("热点", "Hotspot", [LegendRow("#d62f27", "热点 99% 置信", "Hot spot 99% confidence")]).title
    '热点 Hotspot'
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
          .geogrid-legend { background: rgba(255,255,255,0.92); padding: 6px 9px; border-radius: 4px;
            box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 13px/1.45 "Noto Sans CJK SC", "Microsoft YaHei",
            "PingFang SC", "WenQuanYi Micro Hei", sans-serif; color: #222; max-height: 60vh; overflow-y: auto; }
          .geogrid-legend .title { font-weight: bold; margin-bottom: 4px; }
          .geogrid-legend .row { display: flex; align-items: center; white-space: nowrap; }
          .geogrid-legend .sw { display: inline-block; width: 16px; height: 12px; margin-right: 6px;
            border: 1px solid rgba(0,0,0,0.35); flex: none; box-sizing: border-box; }
          .geogrid-legend .sw.outline { border-width: 3px; background: transparent !important; }
          .geogrid-legend .sw.circle { width: 12px; border-radius: 50%; margin: 0 8px 0 2px; }
          .geogrid-legend .sw.line { height: 0; border-width: 2px 0 0 0; }
        </style>
        {% endmacro %}

        {% macro html(this, kwargs) %}
        <div id="{{ this.get_name() }}" class="geogrid-legend leaflet-control" lang="zh-CN">
          <div class="title">{{ this.title|e }}</div>
          {%- for row in this.rows %}
          <div class="row"><span class="sw {{ row.swatch }}" style="background: {{ row.color|e }}; border-color: {{ row.color|e }}"></span><span>{{ row.label|e }}</span></div>
          {%- endfor %}
        </div>
        {% endmacro %}

        {% macro script(this, kwargs) %}
        (function () {
            var el = document.getElementById({{ this.get_name()|tojson }});
            var control = L.control({position: {{ this.position|tojson }}});
            control.onAdd = function () {
                L.DomEvent.disableClickPropagation(el);
                L.DomEvent.disableScrollPropagation(el);
                return el;
            };
            control.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, title_zh: str, title_en: str, rows: Iterable[LegendRow],
                 position: str = "bottomright"):
        super().__init__()
        self._name = "Legend"
        self.rows = list(rows)
        if not self.rows:
            raise InputError("a legend needs at least one row")
        if position not in POSITIONS:
            raise InputError(f"legend position must be one of {POSITIONS}, got {position!r}")
        self.title = f"{title_zh} {title_en}"
        self.position = position
