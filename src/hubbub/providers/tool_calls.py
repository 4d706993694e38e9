"""Tool calling for the embedded model (docs/tool-calling.md).

SmolLM2 was trained to call functions in one form: the tools are described in the system
prompt, inside ``<tools>…</tools>``, and a call is written as

    <tool_call>[{"name": "get_weather", "arguments": {"city": "Oslo"}}]</tool_call>

(several calls are several objects in that list). hubbub writes the prompt in that form and
constrains decoding with a grammar (``json_grammar.tool_calls_gbnf``), so that whatever this small
model chooses, every call names a declared tool and its arguments are JSON valid against that
tool's parameters schema:

- ``required``: the whole answer is the call list; ``named``: one call, of that tool;
  ``parallel_tool_calls`` false: exactly one call;
- ``auto``: the model writes text freely; the grammar engages (llama.cpp's *lazy* grammar) the
  moment it writes ``<tool_call>``, and from there the call list must be exact;
- ``none``: no tools in the prompt and no grammar: text only.

Earlier turns are rendered the same way: an assistant's calls as that ``<tool_call>`` text, a
tool's result as a ``tool`` turn. ``ToolCallParser`` turns the decoded text back into
``TextDelta``\\ s and OpenAI-shaped ``ToolCallDelta``\\ s (a call's first delta has its id and
name, later ones argument fragments), as the tokens come.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hubbub.core.events import ProviderEvent, TextDelta, ToolCallDelta
from hubbub.core.types import Message, TextPart, ToolCall, ToolResult, Tools
from hubbub.providers.json_grammar import tool_calls_gbnf

OPEN = "<tool_call>"
HEAD = OPEN + "["
SEPARATOR = ", "
TAIL = "]</tool_call>"
CALL_OPEN = '{"name": "'
CALL_MIDDLE = '", "arguments": '
CALL_CLOSE = "}"
# llama.cpp matches trigger patterns against everything decoded so far; the grammar then applies
# from the first group on: from "<tool_call>" to the end.
TRIGGER = r"[\s\S]*?(<tool_call>)[\s\S]*"

_INSTRUCTIONS = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. "
    "If none of the functions can be used, answer in plain text.\n\n"
    "You have access to the following tools:\n<tools>{tools}</tools>\n\n"
    "To call tools, write only the calls, in this format:\n"
    '<tool_call>[{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}}]'
    "</tool_call>"
)


def active(tools: Tools | None) -> Tools | None:
    """The tools the model is offered: none when there are none or ``tool_choice`` is ``none``."""
    if tools is None or not tools.specs or tools.choice.mode == "none":
        return None
    if tools.choice.mode == "named":
        spec = tools.get(tools.choice.name or "")
        return Tools((spec,), tools.choice, parallel=False) if spec is not None else None
    return tools


def system_prompt(tools: Tools) -> str:
    described = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools.specs]
    return _INSTRUCTIONS.format(tools=json.dumps(described, ensure_ascii=False))


def call_text(calls: list[ToolCall]) -> str:
    """Calls an assistant made, written as the model writes them."""
    items = []
    for c in calls:
        try:
            arguments: Any = json.loads(c.arguments or "{}")
        except ValueError:
            arguments = c.arguments  # as the client sent it: shown as a string rather than dropped
        items.append({"name": c.name, "arguments": arguments})
    return OPEN + json.dumps(items, ensure_ascii=False) + "</tool_call>"


def render(messages: list[Message], tools: Tools | None) -> list[dict[str, str]]:
    """Messages for the chat template: tool definitions joined to the system prompt, calls and
    results as the model was trained to see them. Images never get here (capabilities)."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m.role == "tool":
            results = [p for p in m.parts if isinstance(p, ToolResult)]
            text = "\n".join(r.text for r in results) if results else m.text
            out.append({"role": "tool", "content": text})
        elif m.role == "assistant" and m.tool_calls:
            text = "".join(p.text for p in m.parts if isinstance(p, TextPart))
            out.append({"role": "assistant", "content": text + call_text(m.tool_calls)})
        else:
            out.append({"role": m.role, "content": m.text})
    if tools is not None:
        prompt = system_prompt(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def grammar(tools: Tools) -> tuple[str, bool]:
    """The GBNF for ``tools`` and whether it is lazy (``auto``: engaged by ``<tool_call>``)."""
    specs = [(t.name, t.parameters or {"type": "object", "properties": {}}) for t in tools.specs]
    text = tool_calls_gbnf(specs, HEAD, SEPARATOR, TAIL, CALL_OPEN, CALL_MIDDLE, CALL_CLOSE,
                           parallel=tools.parallel)
    return text, tools.choice.mode == "auto"


def new_call_id() -> str:
    return "call_" + os.urandom(12).hex()


class ToolCallParser:
    """Decoded text → ``TextDelta``\\ s and ``ToolCallDelta``\\ s, incrementally.

    Before ``<tool_call>`` everything is text (a piece that may be the start of it is held
    back until it is known not to be). After it the text follows the grammar exactly, so the
    call list is read with a small state machine: each call's name, then its arguments as
    fragments, each value ending where the JSON value does.
    """

    def __init__(self) -> None:
        self._state = "text"
        self._held = ""  # text that may be the start of "<tool_call>"
        self._expect = ""  # a literal still to be read
        self._after = ""  # the state once it is read
        self._name = ""
        self._index = -1
        self._depth = 0  # of the arguments value
        self._in_string = False
        self._escaped = False
        self._scalar = False
        self.calls = 0
        self.complete = False  # the call list was closed

    @property
    def in_calls(self) -> bool:
        return self._state != "text"

    def feed(self, text: str) -> list[ProviderEvent]:
        out: list[ProviderEvent] = []
        plain: list[str] = []
        args: list[str] = []

        def flush_args() -> None:
            if args:
                out.append(ToolCallDelta(self._index, arguments="".join(args)))
                args.clear()

        i = 0
        while i < len(text):
            state = self._state
            if state == "text":
                buf = self._held + text[i:]
                at = buf.find(OPEN)
                if at == -1:
                    keep = _partial_suffix(buf, OPEN)
                    plain.append(buf[:len(buf) - keep])
                    self._held = buf[len(buf) - keep:]
                    break
                plain.append(buf[:at])
                self._held = ""
                consumed = at + len(OPEN) - (len(buf) - len(text[i:]))  # of ``text[i:]``
                i += consumed
                self._literal("[" + CALL_OPEN, "name")
                continue
            ch = text[i]
            i += 1
            if state == "literal":
                if ch != self._expect[0]:
                    raise ValueError(f"unexpected {ch!r} in a tool call (expected {self._expect!r})")
                self._expect = self._expect[1:]
                if not self._expect:
                    self._enter(self._after, out)
            elif state == "name":
                if ch == '"':
                    self._index += 1
                    self.calls += 1
                    out.append(ToolCallDelta(self._index, id=new_call_id(), name=self._name))
                    self._literal(CALL_MIDDLE[1:], "args")
                else:
                    self._name += ch
            elif state == "args":
                ended = self._scan(ch)
                if ended is None:
                    args.append(ch)
                else:
                    if ended:
                        args.append(ch)
                    flush_args()
                    self._state = "after-args"
                    if not ended:  # the character that ended a bare scalar belongs to what follows
                        i -= 1
            elif state == "after-args":
                if ch.isspace():
                    continue
                if ch != CALL_CLOSE:
                    raise ValueError(f"unexpected {ch!r} after a tool call's arguments")
                self._state = "between"
            elif state == "between":
                if ch == SEPARATOR[0]:
                    self._literal(SEPARATOR[1:] + CALL_OPEN, "name")
                elif ch == TAIL[0]:
                    self._literal(TAIL[1:], "done")
                else:
                    raise ValueError(f"unexpected {ch!r} between tool calls")
            else:  # done: nothing may follow the call list
                if not ch.isspace():
                    raise ValueError("text after the tool calls")
        if plain and "".join(plain):
            out.insert(0, TextDelta("".join(plain)))
        flush_args()
        return out

    def finish(self) -> list[ProviderEvent]:
        """The end of the answer: held-back text goes out (it was not a call after all)."""
        held, self._held = self._held, ""
        return [TextDelta(held)] if held and self._state == "text" else []

    def _literal(self, expect: str, then: str) -> None:
        self._state, self._expect, self._after = "literal", expect, then

    def _enter(self, state: str, out: list[ProviderEvent]) -> None:
        self._state = state
        if state == "name":
            self._name = ""
        elif state == "args":
            self._depth, self._in_string, self._escaped, self._scalar = 0, False, False, False
        elif state == "done":
            self.complete = True

    def _scan(self, ch: str) -> bool | None:
        """Read one character of the arguments value: None while it goes on; True when this
        character ended it (a closing bracket or quote); False when this character is past its
        end (a bare number, true, false or null ends at the first character not its own)."""
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif ch == "\\":
                self._escaped = True
            elif ch == '"':
                self._in_string = False
                if self._depth == 0:
                    return True
            return None
        if self._scalar:
            if ch.isalnum() or ch in "+-.":
                return None
            return False
        if ch.isspace() and self._depth == 0:
            return None  # whitespace before the value
        if ch == '"':
            self._in_string = True
        elif ch in "{[":
            self._depth += 1
        elif ch in "}]":
            self._depth -= 1
            if self._depth == 0:
                return True
        elif self._depth == 0:
            self._scalar = True
        return None


def _partial_suffix(text: str, word: str) -> int:
    """The length of the longest end of ``text`` that is a proper start of ``word``."""
    for n in range(min(len(word) - 1, len(text)), 0, -1):
        if text.endswith(word[:n]):
            return n
    return 0
