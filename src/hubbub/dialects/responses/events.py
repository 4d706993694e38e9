"""Core events -> the Responses API's stream events, numbered, as OpenAI sends them.

    response.created ─ [response.queued] ─ response.in_progress
    per output item, in the order they begin (one open at a time):
      message     output_item.added ─ content_part.added ─ output_text.delta… ─
                  output_text.done ─ content_part.done ─ output_item.done
      call        output_item.added ─ function_call_arguments.delta… ─
                  function_call_arguments.done ─ output_item.done
      reasoning   output_item.added ─ content_part.added ─ reasoning_text.delta… ─
                  reasoning_text.done ─ content_part.done ─ output_item.done
    [error] ─ response.completed | response.incomplete | response.failed

Every event has a ``sequence_number`` (0, 1, …). Framing is a pure function of the core events
it is fed, and item ids follow from the response id (``adapter.item_id``), so replaying a stored
response's buffered events on any replica gives the same events with the same numbers: that is
how ``GET /v1/responses/{id}?stream=true&starting_after=N`` resumes (``runs.replay``).

A cancelled response ends after its open item is closed: OpenAI's event set has no terminal
event for cancellation (docs/api-decisions.md, "Responses").
"""

from __future__ import annotations

import copy
from typing import Any

from hubbub.core.events import ErrorEvent, Event, ReasoningDelta, TextDelta, ToolCallDelta
from hubbub.dialects.responses.adapter import call_item, item_status, message_item, reasoning_item

_TERMINAL = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}


class EventFramer:
    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.seq = 0
        self.items: list[dict[str, Any]] = []  # output items so far, in their latest state
        self._open: int | None = None  # the output index of the item being streamed
        self._sealed = False  # the open reasoning item got its signature: the next reasoning starts another
        self._calls: dict[int, int] = {}  # a tool call's index in the answer -> its output index
        self.error: dict[str, Any] | None = None  # the ``error`` event's body, once one was sent

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    def start(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        """``response.created`` (then ``.queued`` for a background response) and ``.in_progress``."""
        events = [self._event("response.created", response=response)]
        if response["status"] == "queued":
            events.append(self._event("response.queued", response=response))
        events.append(self._event("response.in_progress", response={**response, "status": "in_progress"}))
        return events

    # -- the answer's events ---------------------------------------------------------------------------

    def feed(self, event: Event) -> list[dict[str, Any]]:
        if type(event) is TextDelta:
            return self._text(event.text) if event.text else []
        if isinstance(event, ToolCallDelta):
            return self._call(event)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event)
        if isinstance(event, ErrorEvent):
            code = event.code.lower()  # the core's MODEL_ERROR is OpenAI's model_error
            self.error = {"code": code, "message": event.message}
            return [self._event("error", code=code, message=event.message, param=None)]
        return []  # ChatCreated, UsageReport, Finish, Done: the caller ends the stream (``finish``)

    def _current(self, kind: str) -> dict[str, Any] | None:
        if self._open is None:
            return None
        item = self.items[self._open]
        return item if item["type"] == kind else None

    def _text(self, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        item = self._current("message")
        if item is None:
            events += self._close("completed")
            index = len(self.items)
            item = message_item(self.response_id, index, "", "in_progress")
            self.items.append(item)
            self._open = index
            events.append(self._event("response.output_item.added", output_index=index, item=_empty(item)))
            events.append(self._event("response.content_part.added", item_id=item["id"], output_index=index,
                                      content_index=0, part=copy.deepcopy(item["content"][0])))
        item["content"][0]["text"] += text
        events.append(self._event("response.output_text.delta", item_id=item["id"], output_index=self._open,
                                  content_index=0, delta=text, logprobs=[]))
        return events

    def _reasoning(self, delta: ReasoningDelta) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        item = self._current("reasoning")
        if item is None or self._sealed or delta.redacted is not None:
            events += self._close("completed")
            index = len(self.items)
            item = reasoning_item(self.response_id, index, "", "in_progress")
            self.items.append(item)
            self._open, self._sealed = index, False
            events.append(self._event("response.output_item.added", output_index=index, item=_empty(item)))
            events.append(self._event("response.content_part.added", item_id=item["id"], output_index=index,
                                      content_index=0, part=copy.deepcopy(item["content"][0])))
        if delta.text:
            item["content"][0]["text"] += delta.text
            events.append(self._event("response.reasoning_text.delta", item_id=item["id"], output_index=self._open,
                                      content_index=0, delta=delta.text))
        if delta.signature is not None or delta.redacted is not None:
            self._sealed = True  # as the answer's assembly does (core/generation.py)
        return events

    def _call(self, delta: ToolCallDelta) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = self._calls.get(delta.index)
        if index is None:
            events += self._close("completed")
            index = len(self.items)
            item = call_item(self.response_id, index, delta.id or "", delta.name or "", "", "in_progress")
            self.items.append(item)
            self._calls[delta.index] = self._open = index
            events.append(self._event("response.output_item.added", output_index=index, item=copy.deepcopy(item)))
        item = self.items[index]
        if delta.id and not item["call_id"]:
            item["call_id"] = delta.id
        if delta.name and not item["name"]:
            item["name"] = delta.name
        if delta.arguments:
            item["arguments"] += delta.arguments
            if index == self._open:
                events.append(self._event("response.function_call_arguments.delta", item_id=item["id"],
                                          output_index=index, delta=delta.arguments))
            # A fragment of a call already closed (an upstream interleaving its calls) joins the
            # call's arguments in the final output; its item was already reported done.
        return events

    def _close(self, status: str) -> list[dict[str, Any]]:
        """Close the open item with ``status``: its ``.done`` events, innermost first."""
        if self._open is None:
            return []
        index, self._open = self._open, None
        item = self.items[index]
        item["status"] = status
        events: list[dict[str, Any]] = []
        if item["type"] == "message":
            part = item["content"][0]
            events.append(self._event("response.output_text.done", item_id=item["id"], output_index=index,
                                      content_index=0, text=part["text"], logprobs=[]))
            events.append(self._event("response.content_part.done", item_id=item["id"], output_index=index,
                                      content_index=0, part=copy.deepcopy(part)))
        elif item["type"] == "reasoning":
            part = item["content"][0]
            events.append(self._event("response.reasoning_text.done", item_id=item["id"], output_index=index,
                                      content_index=0, text=part["text"]))
            events.append(self._event("response.content_part.done", item_id=item["id"], output_index=index,
                                      content_index=0, part=copy.deepcopy(part)))
        else:
            if not item["arguments"]:
                item["arguments"] = "{}"  # as the stored answer has it (core/generation.py)
            events.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=index, name=item["name"], arguments=item["arguments"]))
        events.append(self._event("response.output_item.done", output_index=index, item=copy.deepcopy(item)))
        return events

    # -- the end ----------------------------------------------------------------------------

    def finish(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        """Close the open item and send the terminal event of ``response`` (its final state;
        its ``output`` is set here from the items streamed, so the two always agree)."""
        status = response["status"]
        events = self._close(item_status(status))
        response = {**response, "output": copy.deepcopy(self.items)}
        if status == "failed" and self.error is None and response.get("error"):
            # A failure the stream has not reported yet (a replica that died mid-answer).
            error = response["error"]
            self.error = error
            events.append(self._event("error", code=error.get("code"), message=error.get("message", ""), param=None))
        kind = _TERMINAL.get(status)
        if kind is not None:
            events.append(self._event(kind, response=response))
        return events


def _empty(item: dict[str, Any]) -> dict[str, Any]:
    """An item as its ``output_item.added`` shows it: in progress, no content yet."""
    return {**copy.deepcopy(item), "content": []}
