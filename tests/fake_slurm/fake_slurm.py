"""Fake SLURM client commands for tests: sbatch runs the job script locally in the background.

Each command is a small wrapper (sbatch, sacct, sinfo, sacctmgr, srun, squeue, scontrol) that calls
this file with its own name. State lives in $FAKE_SLURM_DIR: sbatch.jsonl records every sbatch
command line (what the tests assert), jobs/<id>.json the job's name and state. No cluster needed:
snakemake-executor-plugin-slurm submits, polls and reads job states exactly as on a real cluster.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ.get("FAKE_SLURM_DIR", "/tmp/fake-slurm"))
ACCOUNT = "fakeaccount"


def _next_id() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "counter", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        current = int(handle.read() or 1000) + 1
        handle.seek(0)
        handle.truncate()
        handle.write(str(current))
    return current


def _option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def sbatch(args: list[str]) -> int:
    script = _option(args, "--wrap")
    if script is None:
        script = sys.stdin.read() if args and args[-1] == "/dev/stdin" else ""
    if not script:
        print("sbatch: error: no job script", file=sys.stderr)
        return 1
    job_id = _next_id()
    name = _option(args, "--job-name", "-J") or "job"
    output = (_option(args, "--output", "-o") or f"slurm-{job_id}.out").replace("%j", str(job_id))
    workdir = _option(args, "-D", "--chdir") or os.getcwd()
    jobs = STATE / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / f"{job_id}.json").write_text(json.dumps({"name": name, "state": "RUNNING"}))
    with open(STATE / "sbatch.jsonl", "a") as log:
        log.write(json.dumps({"id": job_id, "argv": ["sbatch", *args]}) + "\n")
    record = jobs / f"{job_id}.json"
    finish = (f"rc=$?; python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); "
              f"d[\"state\"]=\"COMPLETED\" if sys.argv[2]==\"0\" else \"FAILED\"; json.dump(d, open(p, \"w\"))' "
              f"{shlex.quote(str(record))} $rc")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLURM_JOB_ID": str(job_id), "SLURM_JOBID": str(job_id)}
    with open(output, "w") as out:
        subprocess.Popen(["bash", "-c", f"{script}\n{finish}"], cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    print(job_id)
    return 0


def sacct(args: list[str]) -> int:
    fmt = _option(args, "--format", "-o") or ""
    if fmt.startswith("Account"):
        print(ACCOUNT)
        return 0
    name = _option(args, "--name")
    for record in sorted((STATE / "jobs").glob("*.json")):
        job = json.loads(record.read_text())
        if name is None or job["name"] == name:
            print(f"{record.stem}|{job['state']}")
    return 0


def srun(args: list[str]) -> int:
    while args and args[0].startswith("-"):
        args = args[1:]
    return subprocess.call(args)


def main() -> int:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "sbatch":
        return sbatch(args)
    if command == "sacct":
        return sacct(args)
    if command == "sacctmgr":
        print(ACCOUNT)
        return 0
    if command == "sinfo":
        print("PARTITION\ncpu*\ngpu")
        return 0
    if command == "srun":
        return srun(args)
    if command == "squeue":
        return 0
    print(f"{command}: not available in the fake SLURM", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
