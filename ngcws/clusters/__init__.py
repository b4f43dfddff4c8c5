"""Beyond one machine: a workspace as a multi-node job on Slurm, Kubernetes, or as a Compose file.

Pure generation (``model``, ``job``, ``slurm``, ``k8s``, ``compose``) is kept apart from the
commands that run ``sbatch``/``squeue``/``scancel`` (``slurmctl``).
"""
