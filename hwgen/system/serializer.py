"""The reply serializer: beats of up to k host words in, one host word per beat out."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


def reply_layout(max_words: int, host_width: int) -> data.StructLayout:
    """A reply beat: `beat` (up to `max_words` words, word 0 in the low bits) and `words`, how many to send."""
    return data.StructLayout({"beat": max_words * host_width, "words": range(max_words + 1)})


def word_layout(host_width: int) -> data.StructLayout:
    return data.StructLayout({"word": unsigned(host_width)})


class ReplySerializer(wiring.Component):
    """Sends each beat on `i` as its first `i.payload.words` words on `o`, low word first (`words` must be 1 to
    `max_words`: the decoder never offers an empty beat).

    Timing: one holding register; a beat is taken when the register is empty or its last word is being taken,
    and its first word is offered in the next cycle, so back-to-back beats leave one word per cycle. `o.valid`
    never waits for `o.ready`; the word is stable while stalled. `i.ready` depends on `o.ready`."""

    def __init__(self, *, host_width: int, max_words: int):
        if not isinstance(max_words, int) or max_words < 1:
            raise ValueError(f"max_words: got {max_words!r}, allowed: a positive integer")
        self.host_width, self.max_words = host_width, max_words
        super().__init__({"i": In(stream.Signature(reply_layout(max_words, host_width))),
                          "o": Out(stream.Signature(word_layout(host_width)))})

    def elaborate(self, platform):
        m = Module()
        w, k = self.host_width, self.max_words
        hold, valid = Signal(k * w), Signal()
        sent, count = Signal(range(k + 1)), Signal(range(k + 1))     # words sent of the held beat, its size
        m.d.comb += [self.i.ready.eq(~valid | (self.o.ready & (sent == count - 1))),
                     self.o.valid.eq(valid), self.o.payload.word.eq(hold[:w])]
        with m.If(self.i.ready):
            m.d.sync += [valid.eq(self.i.valid), hold.eq(self.i.payload.beat), sent.eq(0),
                         count.eq(self.i.payload.words)]
        with m.Elif(self.o.ready):
            m.d.sync += [hold.eq(hold >> w), sent.eq(sent + 1)]
        return m
