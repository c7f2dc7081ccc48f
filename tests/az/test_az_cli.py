"""The harness itself: the Azure CLI the suite drives lks with is the pinned one, and it keeps
its state out of the user's home."""

from __future__ import annotations

from pathlib import Path


def test_az_is_the_pinned_cli(az):
    pinned = (Path(__file__).parent / "requirements.txt").read_text().split("azure-cli==")[1].split()[0]
    assert az("version")["azure-cli"] == pinned


def test_az_state_is_private_to_the_module(az):
    az("config", "set", "core.only_show_errors=true")
    assert (az.home / ".azure" / "config").read_text().count("only_show_errors") == 1
