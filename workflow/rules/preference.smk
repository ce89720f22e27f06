# The human preference study (paper section 4; python -m pipeline.preference, docs/preference.md):
# results/<ds>/preference/study/ (study.json + videos/; prepared.json is the rule's sentinel) from
# the synthesized val videos of
# preference.ours and the methods its studies compare it with; answers come from
# `python -m pipeline.preference serve` (or a crowdsourcing batch, `... import`) into
# results/<ds>/preference/answers.sqlite, which no rule writes; results/<ds>/preference.csv scores
# them (the rule reruns when the database file changed). A study with answers is never replaced by
# a different one: move answers.sqlite away first.


rule preference_study:
    input:
        synth=lambda w: [f"{RESULTS}/{w.ds}/synth/{m}/synthesis.json" for m in preference_methods(w)],
        cache=f"{RESULTS}/{{ds}}/cache/index.json",
        manifest=f"{RESULTS}/{{ds}}/frames/manifest.csv",  # the sequences' frame rates
    output:
        # the sentinel, written after the study folder: Snakemake deletes it before a rerun, never
        # the study itself, which prepare replaces only when no answers to it would be orphaned
        f"{RESULTS}/{{ds}}/preference/prepared.json",
    log:
        f"{RESULTS}/{{ds}}/logs/preference_study.log",
    conda:
        CONDA_ENV
    params:
        code=code_version("pipeline.preference.study"),
        dataset=dataset_arg("preference", "evaluate.methods", "evaluate.ablations"),
    shell:
        stage_shell("pipeline.preference prepare", "--sentinel {output}")


rule preference_export:
    input:
        study=f"{RESULTS}/{{ds}}/preference/prepared.json",
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
