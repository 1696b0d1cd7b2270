"""The malloc arena limit a long-running process sets (`smbc worker`, `smbc serve`, an export run)."""

from __future__ import annotations

import platform
import sys

import pytest

from smbc.core import process_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="needs glibc"
)
def test_glibc_takes_the_arena_limit() -> None:
    assert process_memory.limit_malloc_arenas() is True


def test_another_platform_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_memory.sys, "platform", "darwin")
    assert process_memory.limit_malloc_arenas() is False
