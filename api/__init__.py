"""geogrid's HTTP API (FastAPI). Only this package speaks HTTP; it reads settings only in create_app."""
