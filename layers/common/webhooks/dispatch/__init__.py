"""The dispatch function's core.

- ``fanout``: an envelope of events fanned out to one delivery message per (event, partner)
"""
