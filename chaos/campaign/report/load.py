"""One campaign folder read into :class:`CampaignData`, its rows labelled by arm."""

from __future__ import annotations

from pathlib import Path

from chaos.campaign.report.arms import sample_arms, wave_arms
from chaos.campaign.report.data import (
    ARM,
    CANCEL_NUMBERS,
    CANCEL_TEXT,
    CANCELS_FILE,
    REAP_FILE,
    REAP_NUMBERS,
    REAP_TEXT,
    SAMPLE_NUMBERS,
    SAMPLE_TEXT,
    SAMPLES_FILE,
    SUMMARY_FILE,
    WAVE_NUMBERS,
    WAVE_TEXT,
    WAVES_FILE,
    CampaignData,
    CampaignDataError,
    read_summary,
    read_table,
)


def load_campaign(out_dir: Path) -> CampaignData:
    """Read every file of one campaign folder."""
    if not out_dir.is_dir():
        raise CampaignDataError(f"{out_dir}: not a campaign folder")
    summary = read_summary(out_dir / SUMMARY_FILE)
    waves = read_table(out_dir / WAVES_FILE, WAVE_TEXT, WAVE_NUMBERS, required=True)
    samples = read_table(out_dir / SAMPLES_FILE, SAMPLE_TEXT, SAMPLE_NUMBERS, required=False)
    arms = wave_arms(waves, summary)
    waves = waves.with_text(ARM, arms)
    samples = samples.with_text(ARM, sample_arms(samples, waves, arms))
    return CampaignData(
        out_dir=out_dir,
        summary=summary,
        waves=waves,
        samples=samples,
        cancels=read_table(out_dir / CANCELS_FILE, CANCEL_TEXT, CANCEL_NUMBERS, required=False),
        reap=read_table(out_dir / REAP_FILE, REAP_TEXT, REAP_NUMBERS, required=False),
        # An interrupted campaign may have samples and no wave yet.
        arms=waves.distinct(ARM) or samples.distinct(ARM),
    )
