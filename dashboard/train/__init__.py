"""The Train page: settings, live runs, the runs table and checkpoint import."""
