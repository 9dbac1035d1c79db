"""Google Cloud adapters over the official clients, one module per client, so a function
imports only the clients its stage uses."""
