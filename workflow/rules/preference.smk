# The human preference study (paper section 4; python -m pipeline.preference, docs/preference.md):
# results/<ds>/preference/study/ (study.json + videos/) from the synthesized val videos of
# preference.ours and the methods its studies compare it with; answers come from
# `python -m pipeline.preference serve` (or a crowdsourcing batch, `... import`) into
# results/<ds>/preference/answers.sqlite, which no rule writes; results/<ds>/preference.csv scores
# them (rerun it after new answers: the rule reruns when the database file changed).


rule preference_study:
    input:
        synth=lambda w: [f"{RESULTS}/{w.ds}/synth/{m}/synthesis.json" for m in preference_methods(w)],
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
    output:
        f"{RESULTS}/{{ds}}/preference/study/study.json",
    log:
        f"{RESULTS}/{{ds}}/logs/preference_study.log",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.preference.study"),
        dataset=dataset_arg("preference", "evaluate"),
    shell:
        stage_shell("pipeline.preference prepare")


rule preference_export:
    input:
        study=f"{RESULTS}/{{ds}}/preference/study/study.json",
        answers=preference_answers,
    output:
        csv=report(f"{RESULTS}/{{ds}}/preference.csv", caption="../report/preference.rst", category="Evaluation"),
        json=f"{RESULTS}/{{ds}}/preference.json",
    log:
        f"{RESULTS}/{{ds}}/logs/preference_export.log",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.preference.scores"),
        dataset=dataset_arg("preference"),
    shell:
        stage_shell("pipeline.preference export", "--output {output.csv}")
