"""Scale-out: replicas behind nginx on PostgreSQL, Redis and a model server (orchestration floor)."""
