"""Private attributes kept by the Retain Safe Private Option.

An entry is (group, private creator, element byte): the element (gggg,xxEE) of the block
reserved by that creator. PS3.15 E.3.10 leaves the list to the implementation; this one is
deliberately empty until each entry is checked against vendor conformance statements, so
the option currently removes every private attribute (and records that it was applied).
"""

from __future__ import annotations

SAFE_PRIVATE_ATTRIBUTES: frozenset[tuple[int, str, int]] = frozenset()
