"""The ecosystem health report: one self-contained HTML file per run, read from the analysts'
database (`build_report`)."""

from contagion.report.build import (
    SECTIONS,
    Report,
    ReportSummary,
    SectionStatus,
    build_report,
    render_report,
)

__all__ = ["SECTIONS", "Report", "ReportSummary", "SectionStatus", "build_report",
           "render_report"]
