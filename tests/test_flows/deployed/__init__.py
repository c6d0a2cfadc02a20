"""The tests of one deployed stack: a package, so its package-scoped stack ends with them."""
