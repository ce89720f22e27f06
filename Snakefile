"""vid2vid: video-to-video synthesis (Wang et al., NeurIPS 2018) as a Snakemake workflow.

    snakemake --cores 2 results/demo/fid.json      # the embedded demo (synthcity)
    snakemake --cores 2 results/face_demo/sketch/contact_sheet.png   # face sketches (carphone)
    snakemake -n results/cityscapes/frames/manifest.csv \
        --config 'datasets={cityscapes: {root: /data/cityscapes}}'

Every target lives under results/<dataset>/; config/<dataset>.yaml describes the dataset. Each rule
calls one stage CLI (python -m pipeline.stages.<stage>), so every stage also runs without Snakemake.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


envvars:
    "PATH",


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/source.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/instances.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/sketch.smk"
include: "workflow/rules/pose.smk"
include: "workflow/rules/cache.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/official.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/side_by_side.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/preference.smk"
include: "workflow/rules/prediction.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/demo/fid.json",
