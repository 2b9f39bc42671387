"""derisk.detect"""
