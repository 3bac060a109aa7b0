"""Where a loomcycle build comes from: module, pinned release, public image, overrides.

The provisioning (``chaos.provision``) installs and packages whatever these
names say; it holds no loomcycle name of its own, so pointing the suite at
another release or target changes this file, not the provisioning.
"""

from __future__ import annotations

#: The release the adapter, the contract and the findings were written against.
VERSION = "v1.59.0"
#: The Go command to ``go install`` (module path of ``cmd/loomcycle``).
GO_MODULE = "github.com/denn-gubsky/loomcycle/cmd/loomcycle"
#: The public image repository; the tag is the version.
PUBLIC_REPO = "denngubsky/loomcycle"
PUBLIC_IMAGE = f"{PUBLIC_REPO}:{VERSION}"
#: User overrides: a prebuilt binary, a ready image, another module version.
ENV_BIN = "LOOMCHAOS_LOOMCYCLE_BIN"
ENV_IMAGE = "LOOMCHAOS_LOOMCYCLE_IMAGE"
ENV_VERSION = "LOOMCHAOS_LOOMCYCLE_VERSION"
