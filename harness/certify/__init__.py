"""Vendor certification: a device through every suite that applies to it, a report (HTML and PDF from the same
data) with a verdict per seed feature and its evidence, and a signed evidence bundle."""
