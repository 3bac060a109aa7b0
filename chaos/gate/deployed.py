"""The gate's ``--target-config``: what the scenario subprocesses get, and what gets redacted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from chaos.sut.loomcycle import target_config
from chaos.sut.loomcycle.advice import advisories
from chaos.sut.loomcycle.settings import LoomcycleSettings, deployed_settings


@dataclass(frozen=True)
class Deployed:
    path: str = ""
    #: Extra environment of every scenario run (the file, through the suite's variable).
    env: dict[str, str] = field(default_factory=dict)
    #: Part of a saved run's reuse key: another file, another run.
    digest: str = ""
    advisories: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()

    @staticmethod
    def of(path: str | None) -> Deployed:
        if not path:
            return Deployed()
        cfg = target_config.load(Path(path))
        settings = deployed_settings(LoomcycleSettings(), cfg)
        text = Path(path).read_bytes()
        return Deployed(
            path,
            {target_config.ENV_TARGET_CONFIG: path},
            hashlib.sha256(text).hexdigest()[:16],
            tuple(advisories(settings, cfg)),
            tuple(target_config.secrets(cfg)),
        )

    def redact_folder(self, folder: Path) -> list[Path]:
        """Secrets out of a run's logs, JUnit and artifacts."""
        return target_config.redact_tree(folder, list(self.secrets)) if self.secrets else []
