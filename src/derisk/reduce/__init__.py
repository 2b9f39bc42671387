"""derisk.reduce"""
