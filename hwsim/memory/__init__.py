"""Memory levels: the transaction-level DRAM timing model, SRAM residency, and the servers the engine uses."""
