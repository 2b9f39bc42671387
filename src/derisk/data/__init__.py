"""Curated data shipped with derisk."""
