"""derisk.store"""
