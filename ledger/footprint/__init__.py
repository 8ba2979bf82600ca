"""Carbon footprint of a batch recomputed from its activity data and versioned factor tables.

Pure domain logic: factor tables are the only files read (``schemas/factors/``), apart from
the document ``footprint_report_from_file`` is asked to read.
"""

from ledger.footprint.calculator import (
    BREAKDOWN_ITEMS,
    DEFAULT_TOLERANCE,
    SCOPE1_2_ITEMS,
    UPSTREAM_ITEMS,
    FootprintCheck,
    FootprintResult,
    compute_footprint,
    exact_breakdown,
    footprint_check,
)
from ledger.footprint.factors import FactorTables, available_versions, load_factor_tables
from ledger.footprint.report import (
    FootprintReport,
    footprint_report,
    footprint_report_from_file,
)

__all__ = [
    "BREAKDOWN_ITEMS",
    "DEFAULT_TOLERANCE",
    "SCOPE1_2_ITEMS",
    "UPSTREAM_ITEMS",
    "FactorTables",
    "FootprintCheck",
    "FootprintReport",
    "FootprintResult",
    "available_versions",
    "compute_footprint",
    "exact_breakdown",
    "footprint_check",
    "footprint_report",
    "footprint_report_from_file",
    "load_factor_tables",
]
