"""The dispatch function's core.

- ``fanout``: an envelope of events fanned out to one delivery message per (event, endpoint)
- ``batch``: one invocation as a Powertools batch processor (envelopes read and subscribers
  queried once per batch, each record fanned out; a store outage defers the batch)
- ``filters``: endpoint event filters, a JSON object matched against the event as the partner
  receives it
"""
