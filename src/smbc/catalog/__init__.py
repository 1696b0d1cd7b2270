"""Product catalog: every storefront's products in a SALESmanago catalog, by full sync and in real time."""
