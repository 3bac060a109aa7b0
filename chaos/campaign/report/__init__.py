"""The campaign report: charts, analyses and a self-contained HTML page from a campaign folder.

``render_report(out_dir)`` reads the files of the data contract (``waves.csv``,
``samples.csv``, ``cancels.csv``, ``reap.csv``, ``summary.json``) and writes
``report.html``, ``report.md``, ``charts/*.png`` and ``analysis.json``.
"""

from chaos.campaign.report.data import CampaignDataError
from chaos.campaign.report.render import render_report

__all__ = ["CampaignDataError", "render_report"]
