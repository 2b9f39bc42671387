"""derisk.ingest"""
