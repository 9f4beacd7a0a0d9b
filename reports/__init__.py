"""Reports (the story) and exports (for researchers). Read the database; never call the network."""
