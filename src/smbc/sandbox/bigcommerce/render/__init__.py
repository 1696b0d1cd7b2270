"""Pure functions from state rows to the JSON BigCommerce answers with (shapes from its OpenAPI specs):
`v2` (orders, order statuses, the store), `v3` (everything else the REST API serves) and `storefront`
(the Storefront API, which browsers call on the shop's own domain)."""
