"""geogrid: the spatial core of police–grid governance.

Glossary (used the same way in modules, tables and endpoints):

grid      a polygon, the unit of responsibility (网格); urban or rural; belongs to a plan
plan      a version of the grid boundaries; draft, active (one at a time) or retired
cell      an H3 cell (int64 id) at a resolution (res)
incident  a point with time, category, priority and origin (reported by the public / discovered by patrols)
post      a station (派出所) or post (警务室): where officers respond from
hotspot   a cell whose Getis-Ord Gi* is significantly high (cold spot: low)
tier      a grid's complexity class, 1 (most complex) to 4
beat      a group of contiguous grids covered by one (or n) officer(s)
"""
__version__ = "0.1.0"
