"""The NLU part of a trained Rasa archive, loaded without the dialogue policies.

`Agent.load` instantiates every node of the prediction graph, TED's TensorFlow
model included (about 11 s of a 46 s load of the CI model, measured with
cProfile on `retrain.kb_probe`), though a parse only runs the NLU nodes. A job
that parses and never predicts actions (the retrain's knowledge-base probe)
loads Rasa's minimal graph for the NLU target instead and gets the same parse
data: the same nodes, run by the same graph runner, read the same way as
`MessageProcessor._parse_message_with_graph` reads them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict, Union

from rasa.core.channels.channel import UserMessage
from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.engine.graph import ExecutionContext
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT


class NLUParser:
    """Parses messages with the NLU nodes of an archive."""

    def __init__(self, archive: Union[str, Path]) -> None:
        # As Rasa's MessageProcessor does: the unpacked files are needed while the components load, not after.
        with tempfile.TemporaryDirectory(prefix="kefu-nlu-") as storage:
            model_storage, metadata = LocalModelStorage.from_model_archive(Path(storage), Path(archive))
            self.target = metadata.nlu_target
            schema = metadata.predict_schema.minimal_graph_schema([self.target])
            self._runner = DaskGraphRunner.create(graph_schema=schema, model_storage=model_storage,
                                                  execution_context=ExecutionContext(graph_schema=schema, model_id=metadata.model_id))

    def parse(self, text: str, sender_id: str = "nlu-only") -> Dict[str, Any]:
        """What `Agent.parse_message(text)` answers (intent, entities, ranking and the components' own keys)."""
        message = UserMessage(text, sender_id=sender_id)
        tracker = DialogueStateTracker.from_events(sender_id, [])
        parsed = self._runner.run(inputs={PLACEHOLDER_MESSAGE: [message], PLACEHOLDER_TRACKER: tracker}, targets=[self.target])
        data: Dict[str, Any] = {TEXT: "", INTENT: {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, ENTITIES: []}
        data.update(parsed[self.target][0].as_dict(only_output_properties=True))
        return data
