"""The service processes' garbage-collector settings."""

from __future__ import annotations

import gc

from pacioli.gc_settings import THRESHOLDS, apply_service_gc_settings


def test_service_settings_collect_less_often_and_leave_start_up_objects_out():
    # (tests/conftest.py restores the defaults after each test.)
    assert gc.get_threshold()[0] < THRESHOLDS[0]
    assert gc.get_freeze_count() == 0
    holder = [object()]  # something start-up allocated

    apply_service_gc_settings()

    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0  # the holder among them: no pass looks at it again
    assert gc.is_tracked(holder)
