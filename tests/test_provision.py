"""Provisioning on a stock Debian cluster: peer on the socket, passwords on TCP, no trust anywhere."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
CLUSTER, PORT = "geogrid_peer", "5439"


@pytest.fixture
def stock_cluster():
    """A fresh cluster with Debian's default pg_hba.conf (peer + scram-sha-256), dropped afterwards."""
    if os.geteuid() != 0 or shutil.which("pg_createcluster") is None:
        pytest.skip("needs root and postgresql-common (as on the CI machine)")
    ver = sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]
    subprocess.run(["pg_dropcluster", "--stop", ver, CLUSTER], capture_output=True)
    yield ver
    subprocess.run(["pg_dropcluster", "--stop", ver, CLUSTER], capture_output=True)


@pytest.mark.slow
def test_provision_creates_password_role_on_a_peer_only_cluster(stock_cluster):
    env = {k: v for k, v in os.environ.items() if k != "GEOGRID_DATABASE_URL"}
    pw = "s3cret 'pw'@/x"  # a quote for SQL, URL specials for the printed URL
    env.update(GEOGRID_DB_CLUSTER=CLUSTER, GEOGRID_DB_PORT=PORT, GEOGRID_DB_PASSWORD=pw)
    out = subprocess.run(["scripts/provision-db.sh", "geogrid_peer_db"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip().splitlines()[-1]
    from urllib.parse import quote
    assert url == f"postgresql+psycopg://geogrid:{quote(pw, safe='')}@127.0.0.1:{PORT}/geogrid_peer_db"
    hba = Path(f"/etc/postgresql/{stock_cluster}/{CLUSTER}/pg_hba.conf").read_text()
    assert "trust" not in "\n".join(x for x in hba.splitlines() if not x.lstrip().startswith("#"))
    eng = create_engine(url)
    with eng.connect() as c:  # TCP with the password the script set: scram, not trust
        assert c.execute(text("SELECT postgis_lib_version()")).scalar().startswith("3.")
    eng.dispose()
    bad = create_engine(url.replace(quote(pw, safe=""), "wrong"))
    with pytest.raises(Exception, match="password authentication failed"):
        bad.connect()
    # idempotent: a second run keeps the database and prints the same URL
    again = subprocess.run(["scripts/provision-db.sh", "geogrid_peer_db"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == url
