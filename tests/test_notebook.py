"""The commander notebook runs to the end on a small generated city committed in the test database.

The city is loaded under a unique plan/source name, the notebook is executed with nbclient (any cell
error fails the test), and every row the city and the notebook's runs added is deleted afterwards.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "commander.ipynb"


def test_committed_notebook_has_no_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), \
        "strip the outputs before committing (jupyter nbconvert --clear-output --inplace notebooks/*.ipynb)"


@pytest.fixture
def notebook_city(engine, tmp_path):
    """120 grids and 12,000 incidents over 26 weeks, committed under a unique name; removed afterwards."""
    from geogrid.demo import PROFILE, write_city
    from geogrid.generate import generate_city
    from geogrid.ingest.fields import Profile
    from geogrid.ingest.grids import load_grids
    from geogrid.ingest.incidents import load_incidents
    from geogrid.store.plans import activate_plan, active_plan

    name = f"nbtest-{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        before = active_plan(conn)
    city = generate_city(seed=21, n_incidents=12_000, days=182, n_grids=120, n_posts=8, n_officers=40,
                         n_auxiliaries=60)
    files = write_city(tmp_path / "city", city=city)
    try:
        g, i = Profile.from_file(PROFILE, "grids"), Profile.from_file(PROFILE, "incidents")
        load_grids(engine, files["grids"], g.fields, plan=name, crs=g.crs, activate=True, defaults=g.defaults)
        loaded = load_incidents(engine, files["incidents"], i.fields, source=name, crs=i.crs, tz=i.timezone,
                                defaults=i.defaults)
        assert loaded.rows_loaded == 12_000
        yield name
    finally:
        with engine.begin() as conn:
            plan_ids = conn.execute(text("SELECT id FROM plans WHERE name = :n"), {"n": name}).scalars().all()
            if plan_ids:
                conn.execute(text("DELETE FROM analysis_runs WHERE plan_id = ANY(:p)"), {"p": plan_ids})
            conn.execute(text("DELETE FROM incidents WHERE source = :n"), {"n": name})
            conn.execute(text("DELETE FROM ingest_runs WHERE source = :n"), {"n": name})
            conn.execute(text("DELETE FROM plans WHERE name = :n"), {"n": name})
            if before is not None:
                activate_plan(conn, before["id"])


def test_commander_notebook_runs_to_the_end(notebook_city, database_url, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from maps.offline import find_external_refs

    monkeypatch.setenv("GEOGRID_DATABASE_URL", database_url)  # the kernel inherits the environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # raises CellExecutionError (with the cell and traceback) on the first failing cell
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    maps = [h for h in html if "leaflet" in h.lower()]
    assert len(maps) == 3, "the hot spot, emerging and forecast maps are shown inline"
    assert all(find_external_refs(h) == [] for h in maps), "inline maps must work offline"
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # time heat map + grid risk plot
    text_out = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert f"plan {notebook_city!r}" in text_out and "12,000 incidents" in text_out
    assert (tmp_path / "notebook-output" / "citywide.png").stat().st_size > 1000
