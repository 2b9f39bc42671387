"""derisk.know"""
