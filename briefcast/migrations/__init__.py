"""Alembic migrations for the ledger and subscriber tables (see briefcast/schema.py).

versions/ holds one file per schema change, numbered 0001, 0002, ...; 0001 is the
schema that ``metadata.create_all`` made before migrations existed.
"""
