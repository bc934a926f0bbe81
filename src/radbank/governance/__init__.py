"""Identities, tokens, keys, the pseudonym vault, the audit trail and the one policy decision
every access goes through.

Modules: keys (the node's key file, project keys), sitekey (project key files for sites),
vault (sealed original identifiers for the honest broker), audit (the hash-chained trail),
policy (`can`). Nothing is imported here, so that `radbank deid` at a site, which needs only
`sitekey`, does not load the node's database layer.
"""
