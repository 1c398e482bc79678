"""Progress bars on stderr, through tqdm (the one progress library of the suite).

    steps_bar(label)        ``ganrepro run``: steps done of a training run, fed by ``train(progress=...)``
    runs_bar(label, total)  ``ganrepro sweep``: runs done of a sweep, advanced as each stack is stored

Both write to stderr only (stdout stays the command's result), and a caller that is quiet makes
none. On a terminal tqdm redraws one line in place; elsewhere (a log file) it writes carriage-
return separated updates, the last one complete when the bar closes. Framework-free.
"""
from __future__ import annotations

import sys

from tqdm import tqdm

STEPS_FORMAT = "{desc}: {n_fmt}/{total_fmt} steps ({percentage:.0f}%), {elapsed_s:.1f} s"
RUNS_FORMAT = "{desc} |{bar:24}| {n_fmt}/{total_fmt} runs{postfix}, {elapsed} elapsed, ETA {remaining}"
"""tqdm puts ', ' before a non-empty postfix: here 'N to go'."""


class StepsBar:
    """``label: done/total steps (pct%), seconds`` for one training run; call ``(done, total)`` after
    each chunk (``training.train``'s ``progress``), ``close()`` at the end. ``note`` (what is about to
    happen, e.g. pretraining) is one line before the bar."""

    def __init__(self, label: str, note: str | None = None, stream=None):
        self.label, self.stream = label, stream
        self.bar: tqdm | None = None
        if note:
            tqdm.write(f"{label}: {note}", file=self._file())

    def _file(self):
        return self.stream if self.stream is not None else sys.stderr

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, bar_format=STEPS_FORMAT, file=self._file(), leave=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def runs_bar(label: str, total: int, stream=None) -> tqdm:
    """A bar of ``total`` runs; ``advance(bar, runs)`` after each stored stack, ``close()`` at the end.

    Every advance is shown (no minimum interval): a sweep stores a stack at a time, seconds to
    minutes apart, and a stack stored within tqdm's default 0.1 s of the previous one must not be
    left out of a log."""
    return tqdm(total=total, desc=label, bar_format=RUNS_FORMAT, postfix=f"{total} to go",
                file=stream if stream is not None else sys.stderr, leave=True, mininterval=0)


def advance(bar: tqdm, runs: int) -> None:
    """Count ``runs`` more runs done on a :func:`runs_bar`."""
    bar.set_postfix_str(f"{bar.total - bar.n - runs} to go", refresh=False)
    bar.update(runs)
