"""Progress bars: rate and count on a terminal, nothing at all when the output is not one."""
import io

from hwgen.progress import progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_shows_count_and_rate_on_a_terminal(monkeypatch):
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    bar = progress(total=6, desc="digits-cnn", unit="sample", mininterval=0)
    bar.update(6)
    bar.close()
    assert "digits-cnn" in term.getvalue() and "6/6" in term.getvalue() and "sample/s" in term.getvalue()


def test_bar_is_silent_when_not_a_terminal(monkeypatch):
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    bar = progress(total=3, desc="sweep")
    bar.update(3)
    bar.close()
    assert pipe.getvalue() == ""
