"""Repeated requests, tallied: readers' comments that ask for the same thing, grouped, so the
author sees "9 readers asked for a dark mode", answers them once and tells each of them.

The core knows neither Flask nor the store (docs/TALLY.md):

- ``grouper.py``: detect what a comment asks for and assign it to the nearest group centroid.
- ``settle.py``: group a whole collection at once (average linkage over the model's vectors).
- ``encoder.py``: the sentence model (all-MiniLM-L6-v2) run on numpy, without torch.

The service around it, on the store:

- ``groups.py``: group ids, which comments count, merges followed, a group's members.
- ``embedders.py``: one embedder of each kind per process, and the configured one.
- ``state.py``: this process's grouper, kept in step with the store's snapshot and log.
- ``service.py``: a comment grouped as it is stored; the settings; settling by itself.
- ``regrouping.py``: every comment grouped again, keeping what the author decided.
- ``actions.py``: the author's rename, merge, move and status, and the follow-up mail.
- ``views.py``: what the requests pages show of a group; ``themes.py``: answers in themes.

The pages are moderation/requests.py, the ``regroup`` command cli/tally.py.
"""
