"""Identities, tokens, keys and the one policy decision every access goes through."""

from radbank.governance.keys import KeyRing
from radbank.governance.policy import Action, Principal, can

__all__ = ["Action", "KeyRing", "Principal", "can"]
