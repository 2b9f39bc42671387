"""derisk.screen"""
