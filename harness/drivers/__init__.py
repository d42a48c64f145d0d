"""Device drivers: emulated and physical devices behind the same capability protocols."""
