"""One module per agent: its config per profile, its policy and its training procedure."""
