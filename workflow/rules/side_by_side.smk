# Stage 'side_by_side': the paper's comparison videos and a contact sheet of the methods of
# evaluate.methods beside the input maps and the real frames (python -m pipeline.stages.side_by_side).


# the paper's comparison videos: input | each method of evaluate.methods | real
rule side_by_side:
    input:
        synth=lambda w: [f"{RESULTS}/{w.ds}/synth/{m}/synthesis.json" for m in evaluate_methods(w)],
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
        manifest=f"{RESULTS}/{{ds}}/frames/manifest.csv",
    output:
        report(f"{RESULTS}/{{ds}}/videos/{{seq}}.mp4", caption="../report/side_by_side.rst", category="Videos"),
    log:
        f"{RESULTS}/{{ds}}/logs/side_by_side/{{seq}}.log",
    group:
        "side_by_side"  # a cluster gets 50 videos a submission (workflow/profiles/slurm)
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.side_by_side"),
        dataset=dataset_arg(),
        methods=lambda w: " ".join(evaluate_methods(w)),
    shell:
        stage_shell(
            "pipeline.stages.side_by_side",
            "--methods {params.methods} --sequence {wildcards.seq} --manifest {input.manifest} --output {output}",
        )


# a contact sheet of the first evaluated sequence: evaluate.sheet_frames as rows, the same columns
rule comparison_sheet:
    input:
        synth=lambda w: [f"{RESULTS}/{w.ds}/synth/{m}/synthesis.json" for m in evaluate_methods(w)],
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
    output:
        report(f"{RESULTS}/{{ds}}/comparison_sheet.png", caption="../report/side_by_side.rst", category="Videos"),
    log:
        f"{RESULTS}/{{ds}}/logs/side_by_side/comparison_sheet.log",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.side_by_side"),
        dataset=dataset_arg(),
        methods=lambda w: " ".join(evaluate_methods(w)),
        sequence=lambda w: eval_sequences(w)[0],
        frames=sheet_frames_arg,
    shell:
        stage_shell(
            "pipeline.stages.side_by_side",
            "--methods {params.methods} --sequence {params.sequence} --sheet {params.frames} --output {output}",
        )
