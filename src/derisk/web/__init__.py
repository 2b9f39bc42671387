"""derisk.web"""
