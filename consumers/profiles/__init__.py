"""Stage 2: per-user profiles folded from ``user-signals`` by a faust-streaming app.

Importing this package is cheap (no faust import): ``profile`` is the pure fold, ``app`` the
faust wiring, ``publish`` the coalesced publisher, ``web`` the HTTP lookup, ``cli`` the
``shoppulse run profiles`` entry point.
"""
