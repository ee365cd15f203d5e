"""The agent desk: where people take over handed-off conversations (orchestration floor)."""
