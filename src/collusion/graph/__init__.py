"""The heterogeneous procurement graph and entity resolution."""

from __future__ import annotations

from ._resolution import (
    DOT_INSENSITIVE_DOMAINS,
    PLUS_TAG_DOMAINS,
    match_addresses,
    match_names,
    normalize_account,
    normalize_address,
    normalize_email,
    normalize_ip,
    normalize_mac,
    normalize_name,
    normalize_phone,
)

__all__ = [
    "DOT_INSENSITIVE_DOMAINS",
    "PLUS_TAG_DOMAINS",
    "match_addresses",
    "match_names",
    "normalize_account",
    "normalize_address",
    "normalize_email",
    "normalize_ip",
    "normalize_mac",
    "normalize_name",
    "normalize_phone",
]
