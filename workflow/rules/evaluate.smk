# Stage 'evaluate': results/<ds>/fid.json (+ metrics.csv, metrics.png) comparing the synthesized val
# videos of the runs in datasets.<ds>.evaluate.methods, and results/<ds>/ablations.csv (+ .json,
# .png) for evaluate.ablations (baselines and ablations: paper Tables 1-2). python -m pipeline.stages.evaluate


rule evaluate:
    input:
        synth=lambda w: [f"{RESULTS}/{w.ds}/synth/{m}/synthesis.json" for m in evaluate_methods(w)],
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
        segmenter=segmenter_inputs,
        evaluator=evaluator_inputs,
        videos=side_by_side_videos,  # not read: so that the report shows the comparison videos
        sheet=f"{RESULTS}/{{ds}}/comparison_sheet.png",  # not read: made with every evaluation
    output:
        fid=f"{RESULTS}/{{ds}}/fid.json",
        csv=report(f"{RESULTS}/{{ds}}/metrics.csv", caption="../report/metrics_table.rst", category="Evaluation"),
        plot=report(f"{RESULTS}/{{ds}}/metrics.png", caption="../report/metrics.rst", category="Evaluation"),
    log:
        f"{RESULTS}/{{ds}}/logs/evaluate.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/evaluate.tsv"
    conda:
        CONDA_ENV
    threads: rule_threads("evaluate")
    params:
        code=code_version("pipeline.stages.evaluate"),
        dataset=dataset_arg("labels"),
        methods=lambda w: " ".join(evaluate_methods(w)),
        compare=evaluate_args,
    shell:
        stage_shell("pipeline.stages.evaluate", "--methods {params.methods} {params.compare} --output {output.fid}")


rule ablations:
    input:
        synth=lambda w: [f"{RESULTS}/{w.ds}/synth/{m}/synthesis.json" for m in ablation_methods(w)],
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
        segmenter=segmenter_inputs,
        evaluator=evaluator_inputs,
    output:
        json=f"{RESULTS}/{{ds}}/ablations.json",
        csv=report(f"{RESULTS}/{{ds}}/ablations.csv", caption="../report/metrics_table.rst", category="Ablations"),
        plot=report(f"{RESULTS}/{{ds}}/ablations.png", caption="../report/metrics.rst", category="Ablations"),
    log:
        f"{RESULTS}/{{ds}}/logs/ablations.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/ablations.tsv"
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.evaluate"),
        dataset=dataset_arg("labels"),
        methods=lambda w: " ".join(ablation_methods(w)),
        compare=lambda w, input: evaluate_args(w, input, "ablations"),
    shell:
        stage_shell(
            "pipeline.stages.evaluate",
            "--methods {params.methods} {params.compare} --output {output.json} --csv {output.csv} --plot {output.plot}",
        )
