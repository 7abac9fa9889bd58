"""Stands in for torch in hwface's local tracker and RPC server processes (see hwface.rpc.procs.runtime_only_env)."""

raise ImportError("torch is not used in this process (hwface.rpc.procs.runtime_only_env)")
