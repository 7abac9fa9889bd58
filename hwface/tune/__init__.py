"""MetaSchedule tuning over TVM RPC and the shared, resumable tuning logs."""
