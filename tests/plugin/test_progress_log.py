"""Issue 25.13: one log line per batch is too chatty. The Processing dialog copies every progress text into its
Log, so the run sets the text at most every TEXT_EVERY_S seconds (and for the last batch); the bar moves after
every batch. A fake clock, no sleeps."""

from __future__ import annotations

from qgis.core import QgsProcessingFeedback


class _Feedback(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.bars: list[float] = []
        self.infos: list[str] = []
        self.progressChanged.connect(self.bars.append)

    def setProgressText(self, text):  # QGIS API name
        self.texts.append(text)

    def pushInfo(self, info):  # QGIS API name
        self.infos.append(info)


def test_progress_text_at_most_every_ten_seconds_and_for_the_last_batch(qgis_app):
    from ccexpert_changes.core.run_loop import RunStats
    from ccexpert_changes.run_feedback import RunProgress

    now = [0.0]
    feedback = _Feedback()
    progress = RunProgress(feedback, 100, clock=lambda: now[0])
    stats = RunStats(total=100)
    for _batch in range(25):  # 25 batches of 4 chips, one every 0.5 s: 12.5 s in all
        stats.captioned += 4
        now[0] += 0.5
        progress(stats)
    progress(stats)  # the run loop reports the finished run once more (seen twice in the Log in QGIS)
    assert len(feedback.bars) == 25 and feedback.bars[-1] == 100.0  # (an unchanged value emits nothing)
    assert len(feedback.texts) == 3  # the first batch, 10 s later, and the last batch (was 25: one per batch)
    assert feedback.texts[0].startswith("4/100 chips") and feedback.texts[-1].startswith("100/100 chips")
    assert feedback.infos == []  # no second copy of the same line
