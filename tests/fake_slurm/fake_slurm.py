"""Fake SLURM client commands for tests: sbatch runs the job script locally in the background.
A job of ``--nodes N`` is N "nodes" on this machine, all named 127.0.0.1: ``srun --nodes=N
--ntasks-per-node=1 CMD`` starts N copies of CMD at once (SLURM_NODEID 0..N-1) and fails if one does
(``-n1`` or ``--ntasks`` sets the count, as the job step's own srun gives it);
``squeue -j ID -o %N`` and ``scontrol show hostnames`` list the job's nodes.

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
    nodes = int(_option(args, "--nodes", "-N") or 1)
    (jobs / f"{job_id}.json").write_text(json.dumps({"name": name, "state": "RUNNING", "nodes": nodes}))
    with open(STATE / "sbatch.jsonl", "a") as log:
        log.write(json.dumps({"id": job_id, "argv": ["sbatch", *args]}) + "\n")
    record = jobs / f"{job_id}.json"
    finish = (f"rc=$?; python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); "
              f"d[\"state\"]=\"COMPLETED\" if sys.argv[2]==\"0\" else \"FAILED\"; json.dump(d, open(p, \"w\"))' "
              f"{shlex.quote(str(record))} $rc")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLURM_JOB_ID": str(job_id), "SLURM_JOBID": str(job_id), "SLURM_JOB_NODELIST": f"fake[1-{nodes}]"}
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
    options = []
    while args and args[0].startswith("-"):
        options, args = options + [args[0]], args[1:]
    nodes = int(_option(options, "--nodes", "-N") or 1)
    tasks = _option(options, "--ntasks") or next((o[2:] for o in options if o.startswith("-n") and o[2:].isdigit()), None)
    count = int(tasks) if tasks else nodes * int(_option(options, "--ntasks-per-node") or 1)
    copies = [subprocess.Popen(args, env={**os.environ, "SLURM_NODEID": str(i), "SLURM_PROCID": str(i)})
              for i in range(count)]
    return max(copy.wait() for copy in copies)


def squeue(args: list[str]) -> int:
    """``squeue -h -j ID -o %N``: the job's node list (fake[1-N]); anything else lists nothing."""
    job_id = _option(args, "-j", "--jobs")
    if job_id and _option(args, "-o", "--format") == "%N":
        job = json.loads((STATE / "jobs" / f"{job_id}.json").read_text())
        print(f"fake[1-{job.get('nodes', 1)}]")
    return 0


def scontrol(args: list[str]) -> int:
    """``scontrol show hostnames fake[1-N]``: N nodes, all this machine."""
    if args[:2] != ["show", "hostnames"] or len(args) < 3 or not args[2].startswith("fake[1-"):
        print(f"scontrol {' '.join(args)}: not available in the fake SLURM", file=sys.stderr)
        return 1
    try:
        print("\n".join(["127.0.0.1"] * int(args[2][len("fake[1-"):-1])))
    except BrokenPipeError:  # | head -n 1
        pass
    return 0


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
        return squeue(args)
    if command == "scontrol":
        return scontrol(args)
    print(f"{command}: not available in the fake SLURM", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
