"""kefu's ground floor: what every other package may use, and that imports none of them.

errors, option classes, runtime set-up, atomic file writes and manifests, text
helpers, the shared n-gram model and scalers, and the payload shapes shared by
the NLU components and the actions. Nothing here imports Rasa, torch or
transformers at module level, so the action server and the CLI start light.
"""
