"""The ``ngcws.`` label namespace: how ngcws recognises its own containers and their spec."""

from __future__ import annotations

PROJECT = "ngcws.project"
WORKSPACE = "ngcws.workspace"
PROJECT_DIR = "ngcws.project-dir"
CONFIG_FILE = "ngcws.config-file"
VERSION = "ngcws.version"
SPEC = "ngcws.spec"  # the canonical essence, JSON: lets `plan` say which field changed
SPEC_HASH = "ngcws.spec-hash"
ONEOFF = "ngcws.oneoff"  # "true" on `ngcws run` containers: never drift, never orphans


def project_filter(project: str, directory: str) -> dict[str, str]:
    """The label filter of one project in one folder."""
    return {PROJECT: project, PROJECT_DIR: directory}
