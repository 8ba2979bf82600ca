"""alu-ledger: a traceability ledger for green low-carbon aluminium.

The domain core. Every record is a participant's signed statement, hash-chained to
the record before it and covered by an RFC 9162 Merkle tree whose signed C2SP
checkpoints let anyone prove inclusion and consistency offline.
"""

__version__ = "0.1.0"
