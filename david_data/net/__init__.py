"""The network plumbing every job shares: :mod:`.http` (a keep-alive client: proxies, TLS,
first contact, ranged replies checked) and :mod:`.retry` (the retry policy and the one
loop's bookkeeping that every request made with it follows).

``mirror``, the sample catalog, its sources and the sample fetch all import from here.
"""
