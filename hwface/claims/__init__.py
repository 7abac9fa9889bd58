"""The papers' efficiency claims checked against measured and predicted latency.

:mod:`~hwface.claims.data` reads the figures (the tuned zoo, onnxruntime beside
TVM, the predictor), :mod:`~hwface.claims.catalog` holds the claims,
:mod:`~hwface.claims.verdict` the rule that turns ratios into verdicts, and
:mod:`~hwface.claims.report` / :mod:`~hwface.claims.charts` write the report.
"""
