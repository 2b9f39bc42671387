"""Deterministic traffic generator: conversations in, a capture file and an independent ledger out."""
