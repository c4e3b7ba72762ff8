"""MongoDB: the client and what the service keeps there beyond partners.

- ``mongo``: one client per process
- ``indexes``: every collection and index, made before anything serves
- ``migrate``: a database written by the Node service brought up to this data model
- ``delivery_log``: :class:`DeliveryLog`, every attempt
- ``event_store``: :class:`EventStore`, accepted events kept for replay
- ``stats``: delivery counts and latency histograms per partner
"""
