"""hwface: hardware-aware compilation and latency modeling for lightweight face-recognition CNNs.

Data flows one way through the layers, lowest first (:data:`LAYERS`)::

    errors < data_dirs < targets < models < analysis < export < compile < rpc < measure < tune
      < latency < nas < claims < docs_gen < workflows < service < cli

A module imports only from its own layer and the layers below it (tested by
``tests/test_layering.py``, which parses every import). The stages (``models`` up
to ``claims``) never import a workflow; the workflows are the sequences of stage
calls that a command runs (compile a network, tune it, profile it, measure the
zoo, check the claims); the CLI and the HTTP service sit on top. A
function-local import is for start-up time (tvm, torch, xgboost), never a way
around the order. What two stages both need moves down: the records a tuning
database holds for a module's kernels (``compile.records``) are read by compile
and written by tune.
"""

__version__ = "0.4.0"

LAYERS = ("errors", "data_dirs", "targets", "models", "analysis", "export", "compile", "rpc", "measure", "tune", "latency", "nas",
          "claims", "docs_gen", "workflows", "service", "cli")
