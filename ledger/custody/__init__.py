"""Chain of custody: who holds which metal, and what every product is made of.

A *lot* is metal addressable as ``(ns, batch_id)``: every registered batch is one (in
its smelter's namespace), and transfers, splits and transforms make new ones in their
creator's namespace. Each lot has a holder and an available mass; custody statements
(``kinds.py``) move, cut and remelt lots so that no kilogram is spent twice, and
record the edges from which ``lineage.py`` derives what a product descends from.
See docs/custody.md.
"""
