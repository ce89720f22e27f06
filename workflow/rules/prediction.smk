# Future video prediction (paper section 4, Table 3; docs/prediction.md): the semantic-map predictor
# and the PredNet / MCNet baselines trained on the cache (python -m pipeline.stages.train_predictor
# --kind labels | prednet | mcnet: results/<ds>/prediction/<kind>/final.pt), each method of
# prediction.methods predicting every val sequence's next `predicted` frames from its first
# `observed` (python -m pipeline.stages.predict: results/<ds>/prediction/synth/<method>/), and their
# scores against the real future frames, overall and per predicted frame
# (python -m pipeline.stages.evaluate_prediction: results/<ds>/prediction/fid.json).


rule train_predictor:
    input:
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
    output:
        f"{RESULTS}/{{ds}}/prediction/{{kind}}/final.pt",
    log:
        f"{RESULTS}/{{ds}}/logs/train_predictor/{{kind}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/train_predictor/{{kind}}.tsv"
    wildcard_constraints:
        kind="labels|prednet|mcnet",
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        code=code_version("model.prediction_trainer"),
        dataset=lambda w: dataset_arg(
            "prediction.observed", "prediction.predictor" if w.kind == "labels" else "prediction.baselines"
        )(w),
        folder=lambda w, output: os.path.dirname(str(output[0])),
    shell:
        stage_shell("pipeline.stages.train_predictor", "--kind {wildcards.kind} --out {params.folder}", gpu=True)


rule predict:
    input:
        unpack(predict_inputs),
    output:
        f"{RESULTS}/{{ds}}/prediction/synth/{{method}}/synthesis.json",
    log:
        f"{RESULTS}/{{ds}}/logs/predict/{{method}}.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/predict/{{method}}.tsv"
    wildcard_constraints:
        method="vid2vid|prednet|mcnet|repeat|flow_extrapolate",
    conda:
        CONDA_ENV
    resources:
        gpu=1,
    params:
        code=code_version("pipeline.stages.predict"),
        folder=lambda w, output: os.path.dirname(str(output[0])),
        split=lambda w: dataset(w.ds).settings.evaluate.split,
        observed=lambda w: prediction_settings(w).observed,
        predicted=lambda w: prediction_settings(w).predicted,
        models=predict_models,
    shell:
        stage_shell(
            "pipeline.stages.predict",
            "--method {wildcards.method} {params.models} --cache {input.cache} --split {params.split} "
            "--observed {params.observed} --predicted {params.predicted} --output {params.folder} "
            "--manifest {input.manifest}",
            dataset=False,
            gpu=True,
        )


rule evaluate_prediction:
    input:
        synth=lambda w: [
            f"{RESULTS}/{w.ds}/prediction/synth/{m}/synthesis.json" for m in prediction_settings(w).methods
        ],
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
        segmenter=segmenter_inputs,
        evaluator=evaluator_inputs,
    output:
        fid=f"{RESULTS}/{{ds}}/prediction/fid.json",
        csv=report(
            f"{RESULTS}/{{ds}}/prediction/prediction.csv",
            caption="../report/prediction.rst",
            category="Future prediction",
        ),
        plot=report(
            f"{RESULTS}/{{ds}}/prediction/prediction.png",
            caption="../report/prediction.rst",
            category="Future prediction",
        ),
        sheet=report(
            f"{RESULTS}/{{ds}}/prediction/sheet.png",
            caption="../report/prediction.rst",
            category="Future prediction",
        ),
        videos=report(
            directory(f"{RESULTS}/{{ds}}/prediction/videos"),
            patterns=["{name}.mp4"],
            caption="../report/prediction.rst",
            category="Future prediction",
        ),
    log:
        f"{RESULTS}/{{ds}}/logs/evaluate_prediction.log",
    benchmark:
        f"{RESULTS}/{{ds}}/benchmarks/evaluate_prediction.tsv"
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.stages.evaluate_prediction"),
        dataset=dataset_arg("labels", "prediction"),
        methods=lambda w: " ".join(prediction_settings(w).methods),
        observed=lambda w: prediction_settings(w).observed,
        predicted=lambda w: prediction_settings(w).predicted,
        split=lambda w: dataset(w.ds).settings.evaluate.split,
        evaluator=lambda w, input: f"--evaluator {input.evaluator}" if input.evaluator else "",
    shell:
        stage_shell(
            "pipeline.stages.evaluate_prediction",
            "--methods {params.methods} --observed {params.observed} --predicted {params.predicted} "
            "--split {params.split} --output {output.fid} --csv {output.csv} --plot {output.plot} "
            "--sheet {output.sheet} --videos {output.videos} {params.evaluator}",
        )
