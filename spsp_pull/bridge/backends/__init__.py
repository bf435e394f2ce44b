"""Adapters to the nodes that move the money: Bitcoin Core (on-chain) and LND (Lightning)."""
