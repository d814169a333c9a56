"""Offline folium maps of geogrid's layers, with bilingual (zh-CN / en) legends.

Nothing here touches the network: Leaflet comes from ``maps/node_modules`` (``make maps-assets``)
and is inlined into each HTML file; there is no base-map tile layer.
"""
from maps.layers import (
    allocation_map,
    beats_map,
    coverage_map,
    emerging_map,
    forecast_map,
    hotspot_map,
    tiers_map,
)
from maps.legend import Legend, LegendRow
from maps.offline import (
    ExternalReferenceError,
    OfflineAssetsMissing,
    OfflineMapError,
    check_offline,
    find_external_refs,
    offline_map,
    save_offline,
)

__all__ = [
    "ExternalReferenceError", "Legend", "LegendRow", "OfflineAssetsMissing", "OfflineMapError",
    "allocation_map", "beats_map", "check_offline", "coverage_map", "emerging_map",
    "find_external_refs", "forecast_map", "hotspot_map", "offline_map", "save_offline", "tiers_map",
]
