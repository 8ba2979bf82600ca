"""Confidential payload members: salted commitments in records, disclosures beside them.

``format`` (disclosures and digests), ``shapes`` (which members each kind's schema marks
confidential), ``commit`` (what a signer runs), ``reveal`` (what the ledger runs on
append), ``sign`` (commit and sign in one step), ``grants`` (who a smelter lets read).
See docs/confidentiality.md.
"""
