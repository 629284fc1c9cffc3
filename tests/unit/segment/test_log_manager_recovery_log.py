"""Startup says whether logs were recovered or the clean-shutdown marker skipped it."""

from __future__ import annotations

import logging
from pathlib import Path

from klog.segment import LogConfig, LogManager, TopicPartition

TP = TopicPartition("events", 0)


def test_startup_reports_recovery_or_its_skipping(tmp_path: Path, batch, caplog) -> None:
    manager = LogManager([tmp_path], LogConfig())
    manager.get_or_create_log(TP).append(batch(2), 0, 0)
    manager.close()  # clean: writes the marker

    with caplog.at_level(logging.INFO, logger="klog.segment.log_manager"):
        reopened = LogManager([tmp_path], LogConfig())
    assert "clean shutdown marker found, skipped recovery of 1 log(s)" in caplog.text
    caplog.clear()
    del reopened  # an unclean stop: the marker was consumed and nothing rewrote it

    with caplog.at_level(logging.INFO, logger="klog.segment.log_manager"):
        LogManager([tmp_path], LogConfig())
    assert "no clean shutdown marker, recovered 1 log(s)" in caplog.text
