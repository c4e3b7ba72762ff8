"""Partners and their subscriptions.

- ``model``: :class:`Partner`, :class:`NewPartner`, :class:`PartnerNotFound`, stored documents' checks
- ``subscriptions``: which patterns match an event type; the event types reserved for the platform
- ``store``: :class:`PartnerStore`, partners and subscriptions in MongoDB
- ``cache``: the store's in-process caches and their cross-process invalidation
- ``urls``: webhook URLs as the API accepts and shows them
- ``credentials``: who is calling (the admin key, partners' API keys)
- ``throttle``: failed credentials per source address
- ``portal_tokens``: short-lived bearer tokens that sign a partner in to the console
"""
