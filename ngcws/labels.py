"""The ``ngcws.`` label namespace: how ngcws recognises its own containers and their spec."""

from __future__ import annotations

PROJECT = "ngcws.project"
WORKSPACE = "ngcws.workspace"
PROJECT_DIR = "ngcws.project-dir"
CONFIG_FILE = "ngcws.config-file"
VERSION = "ngcws.version"
SPEC = "ngcws.spec"  # the canonical essence, JSON: lets `plan` say which field changed
SPEC_HASH = "ngcws.spec-hash"
IGNORE_CHANGES = "ngcws.ignore-changes"  # the workspace's ignore_changes, JSON (not part of the spec)
SNAPSHOT_OF = "ngcws.snapshot-of"  # on a snapshot image: the container id it was committed from
SNAPSHOT_DIGEST = "ngcws.snapshot-digest"  # on a snapshot image: the state of the work it saved
ONEOFF = "ngcws.oneoff"  # "true" on `ngcws run` containers: never drift, never orphans


def project_filter(project: str, directory: str) -> dict[str, str]:
    """The label filter of one project in one folder."""
    return {PROJECT: project, PROJECT_DIR: directory}
