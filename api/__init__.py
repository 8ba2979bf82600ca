"""The HTTP layer: REST (and, as it grows, GraphQL and pages) over ``ledger``."""
