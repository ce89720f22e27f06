# Stage 1: frames. Generated datasets (synthcity) are rendered first into their data root;
# then each shard of sequences is extracted to results/<ds>/frames/<seq>/ with a manifest.


rule synthcity:
    output:
        frames=directory(f"{RESULTS}/{{ds}}/source/leftImg8bit_sequence/{{split}}/{{city}}"),
        gtfine=directory(f"{RESULTS}/{{ds}}/source/gtFine/{{split}}/{{city}}"),
        truth=directory(f"{RESULTS}/{{ds}}/source/synthcity_gt/{{split}}/{{city}}"),
    params:
        dataset=dataset_arg,
    log:
        f"{RESULTS}/{{ds}}/logs/synthcity/{{split}}/{{city}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/synthcity/{{split}}/{{city}}.tsv"
    shell:
        "{PY} -m pipeline.synthcity --dataset {wildcards.ds} --dataset-json {params.dataset}"
        " --results {RESULTS} --sequences {wildcards.city}_000000 > {log} 2>&1"


def frames_inputs(wildcards):
    """What a shard's frames are made from: rendered synthcity folders, or the video files."""
    ds = dataset(wildcards.ds)
    seqs = shard_sequences(wildcards)
    if ds.synthcity is not None:
        root = f"{RESULTS}/{wildcards.ds}/source"
        return [f"{root}/{kind}/{s.split}/{s.name.rsplit('_', 1)[0]}"
                for s in seqs for kind in ("leftImg8bit_sequence", "gtFine", "synthcity_gt")]
    if ds.cfg["adapter"] == "video":
        from pipeline.datasets.video_folder import video_path

        return [str(video_path(ds, s.name)) for s in seqs]
    return []  # a Cityscapes tree on disk: listed, not tracked file by file


rule frames:
    input:
        frames_inputs,
    output:
        f"{RESULTS}/{{ds}}/frames/shards/{{shard}}.csv",
    params:
        dataset=dataset_arg,
        sequences=shard_names,
    log:
        f"{RESULTS}/{{ds}}/logs/frames/{{shard}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/frames/{{shard}}.tsv"
    shell:
        "{PY} -m pipeline.frames --dataset {wildcards.ds} --dataset-json {params.dataset} {FFMPEG}"
        " --results {RESULTS} --sequences {params.sequences} --shard-manifest {output} > {log} 2>&1"


rule frames_manifest:
    input:
        lambda w: [f"{RESULTS}/{w.ds}/frames/shards/{shard}.csv" for shard in shards(w.ds)],
    output:
        f"{RESULTS}/{{ds}}/frames/manifest.csv",
    log:
        f"{RESULTS}/{{ds}}/logs/frames_manifest.log",
    shell:
        "{PY} -m pipeline.manifest {output} {input} > {log} 2>&1"
