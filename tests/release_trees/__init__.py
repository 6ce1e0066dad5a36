"""Release trees generated from real sheets (tiny frames at the paths a sheet names), one
module per dataset, shared by its reader tests and the ``fervid data check`` tests."""
