"""``tinct report``: a page (HTML or Markdown) of every run, study and sweep under a folder."""

from tinct.engine.report.page import write_report

__all__ = ["write_report"]
