"""Stop-sequence matching over a stream of text pieces.

Text that could be the start of a stop sequence is held back until it is
known not to be one, so a client never sees part of a stop string.
"""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False
        self.matched: str | None = None  # the stop string that ended the text (Finish.stop_sequence)

    def feed(self, piece: str) -> str:
        """Add ``piece``; return the text now safe to emit (empty once stopped)."""
        if self.stopped:
            return ""
        if not self._stops:
            return piece
        text = self._held + piece
        cut = -1
        for stop in self._stops:
            idx = text.find(stop)
            if idx != -1 and (cut == -1 or idx < cut):
                cut, self.matched = idx, stop
        if cut != -1:
            self.stopped = True
            self._held = ""
            return text[:cut]
        hold = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        self._held = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """The held-back text, once the stream has ended without a stop."""
        out, self._held = ("" if self.stopped else self._held), ""
        return out
