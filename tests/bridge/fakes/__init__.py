"""Protocol-faithful stand-ins for Bitcoin Core and LND, served over HTTP on 127.0.0.1."""
