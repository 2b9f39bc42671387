"""derisk.enrich"""
