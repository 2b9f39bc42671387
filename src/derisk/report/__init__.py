"""derisk.report"""
