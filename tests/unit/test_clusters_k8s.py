"""`ngcws export k8s`: goldens, offline schema validation of every exported kind
(kubernetes-validate --strict; a JobSet's pod template inside a batch/v1 Job plus an envelope
schema of ours, since no validator ships the JobSet CRD), and the mapping of each field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ngcws.clusters import k8s
from ngcws.errors import UsageError
from tests.unit.clusters_helpers import LLM, golden, job_of

K8S_VERSION = "1.33"

#: The part of JobSet v1alpha2 that ngcws writes (the Job template inside is validated as a Job).
JOBSET_ENVELOPE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "jobset.x-k8s.io/v1alpha2"},
        "kind": {"const": "JobSet"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["replicatedJobs"],
            "properties": {
                "network": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "enableDNSHostnames": {"type": "boolean"},
                        "subdomain": {"type": "string"},
                        "publishNotReadyAddresses": {"type": "boolean"},
                    },
                },
                "failurePolicy": {
                    "type": "object",
                    "properties": {"maxRestarts": {"type": "integer", "minimum": 0}},
                },
                "replicatedJobs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "template"],
                        "properties": {
                            "name": {"type": "string"},
                            "replicas": {"type": "integer", "minimum": 1},
                            "template": {"type": "object", "required": ["spec"]},
                        },
                    },
                },
            },
        },
    },
}


def validate(document: dict[str, Any]) -> None:
    if document["kind"] == "JobSet":
        jsonschema.validate(document, JOBSET_ENVELOPE)
        for replicated in document["spec"]["replicatedJobs"]:
            job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, **replicated["template"]}
            kubernetes_validate.validate(job, K8S_VERSION, strict=True)
        return
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


@pytest.mark.parametrize("kind", ["indexed-job", "jobset"])
def test_golden_and_valid(tmp_path: Path, kind: str) -> None:
    manifest = k8s.render(job_of(tmp_path), kind)
    golden(f"llm-{kind}.yaml", manifest.text, tmp_path)
    documents = list(yaml.safe_load_all(manifest.text))
    assert [d["kind"] for d in documents] == (["Service", "Job"] if kind == "indexed-job" else ["JobSet"])
    for document in documents:
        validate(document)


@pytest.mark.parametrize("launcher", ["torchrun", "srun"])
def test_variants_validate(tmp_path: Path, launcher: str) -> None:
    text = (
        LLM.replace("  gpus_per_node: 8\n", f"  gpus_per_node: 1\n  procs_per_node: 1\n  launcher: {launcher}\n")
        .replace("    shm_size: 16g\n", "    ipc: host\n    ports: ['8888:8888']\n    labels: {team: a}\n")
        .replace("    user: host\n", "    user: root\n    gpus: none\n")
        .replace("    gpus: all\n", "")
        .replace("    capabilities: [compute, utility]\n", "")
        .replace("  gpus_per_node: 1\n", "")
    )
    for kind in ("indexed-job", "jobset"):
        for document in k8s.render(job_of(tmp_path, text), kind).documents:
            validate(document)


def test_the_validator_rejects_a_misspelled_field(tmp_path: Path) -> None:
    job = k8s.render(job_of(tmp_path), "indexed-job").documents[1]
    job["spec"]["template"]["spec"]["volumes"][-1]["emptyDir"]["sizeLimitt"] = "1Gi"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(job)


def test_fields_map_onto_kubernetes(tmp_path: Path) -> None:
    manifest = k8s.render(job_of(tmp_path), "indexed-job")
    service, job = manifest.documents
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert service["spec"]["clusterIP"] == "None" and service["metadata"]["namespace"] == "ml"
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    assert pod["subdomain"] == service["metadata"]["name"] and pod["imagePullSecrets"] == [{"name": "ngc-pull"}]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 8}}
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]
    assert {"name": "v0-data", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": True}} in pod["volumes"]
    assert pod["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000}
    script = container["args"][0]
    assert "ulimit -S -s 65536 " in script  # 67108864 bytes, in bash's KiB
    assert '--rdzv-endpoint="ngcws-llm-train-0.ngcws-llm-train:29500"' in script
    assert '"$JOB_COMPLETION_INDEX" = 0' in script
    notes = "\n".join(manifest.notes)
    assert "ulimits: Kubernetes has no ulimit field" in notes and "hostPath" in notes


def test_kubernetes_expansion_is_escaped(tmp_path: Path) -> None:
    text = LLM.replace("command: [train.py, --cfg, cfg.yaml]", "command: [train.py, --tag, '$$(date)']")
    script = k8s.render(job_of(tmp_path, text), "indexed-job").documents[1]["spec"]["template"]["spec"]
    assert "'$$(date)'" in script["containers"][0]["args"][0]


def test_srun_launcher_with_several_processes_is_refused(tmp_path: Path) -> None:
    text = LLM.replace("  gpus_per_node: 8\n", "  gpus_per_node: 8\n  launcher: srun\n")
    with pytest.raises(UsageError, match="use launcher: torchrun"):
        k8s.render(job_of(tmp_path, text), "indexed-job")


def test_export_command_writes_a_file(tmp_path: Path) -> None:
    from tests.unit.clusters_helpers import project_file

    project_file(tmp_path)
    out = tmp_path / "job.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "ngcws", "export", "k8s", "--kind", "jobset", "-o", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "warning: ulimits" in done.stderr
    assert yaml.safe_load(out.read_text())["kind"] == "JobSet"
