"""What a killed mutant campaign leaves: its labelled images and scratch folders."""

from __future__ import annotations

import docker

from chaos.mutants.image import sweep_mutant_images
from chaos.mutants.workspace import sweep_workspaces
from chaos.provision.common import cache_dir


def sweep_mutants(client: docker.DockerClient) -> list[str]:
    """Remove mutant images and work folders whose campaign process is gone; name them."""
    images = [f"image {tag}" for tag in sweep_mutant_images(client)]
    folders = [f"folder {path}" for path in sweep_workspaces(cache_dir())]
    return images + folders
