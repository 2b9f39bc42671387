"""``derisk watch``: continuous watch over live capture, followed logs, capture rings and NetFlow.

:mod:`.follow` follows growing logs through rotation; :mod:`.sources` and :mod:`.capture` turn what
is new into canonical flows; :mod:`.loop` stores each batch in one transaction with its read
positions (:mod:`derisk.store.checkpoints`); :mod:`.setup` checks a configuration. See
``docs/watch.md``.
"""
