"""The paper's human preference study (section 4, "Human preference score"; Tables 1-2): a study
prepared from the synthesized videos (study.py), a web app that asks raters which of two videos
looks captured by a real camera (server.py), the answers in a database (store.py), scores with
95% intervals (scores.py) and the same study on a crowdsourcing platform (crowd.py). The command
line is ``python -m pipeline.preference`` (__main__.py); docs/preference.md says how to run one.
"""
