"""Tagging stage: analysed → tagged. The heuristic tagger unless an LLM chain is configured;
when every provider fails the heuristic answer is used, so tagging never blocks the pipeline."""

from __future__ import annotations

import structlog

from handlers.tagging.heuristic import heuristic_tags
from handlers.tagging.llm import LLMTagger, TaggingUnavailable
from schemas.events import Analysed, Tagged
from streams.names import Stage

log = structlog.get_logger("tagging")


class TaggingStage:
    stage = Stage.TAGGING
    input_type = Analysed
    version = 1

    def __init__(self, llm: LLMTagger | None) -> None:
        self.llm = llm

    async def handle(self, event: Analysed) -> Tagged:
        tags = None
        if self.llm is not None:
            try:
                tags = await self.llm.tag(event.features, filename=event.track.filename)
            except TaggingUnavailable as exc:
                log.warning("llm_tagging_unavailable_using_heuristic", reason=str(exc))
        if tags is None:
            tags = heuristic_tags(event.features, filename=event.track.filename)
        return Tagged(track=event.track, audio=event.audio, features=event.features, tags=tags)
